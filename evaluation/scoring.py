"""Each answer scored against its gold answers and evidence, and the scores summarised."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from evaluation import metrics
from evaluation.metrics import DEPTH
from evaluation.questions import GoldEvidence, Question
from evaluation.targets import Prediction

RETRIEVAL_METRICS = ("Hits@4", "Hits@10", "MRR@10", "MAP@10", "recall@10", "complete@10")
ANSWER_METRICS = ("lenient", "exact_match", "token_f1", "short_f1", "right")
# Over yes/no questions: verdicts given, their accuracy, and always answering "yes" on the
# questions with a verdict and on all of them.
VERDICT_METRICS = ("verdict_coverage", "verdict_accuracy", "yes_on_verdicts", "yes_baseline")
CITATION_METRICS = ("citation_precision", "citation_recall")
ALL_METRICS = (
    *ANSWER_METRICS,
    *RETRIEVAL_METRICS,
    *CITATION_METRICS,
    *VERDICT_METRICS,
    "refused",
)


def evidence_groups(question: Question) -> list[list[GoldEvidence]]:
    """The gold evidence by article (facts of one article together; a bare fact alone)."""
    groups: dict[str, list[GoldEvidence]] = {}
    for i, item in enumerate(question.evidence):
        key = item.article_key or f"fact:{i}"
        groups.setdefault(key, []).append(item)
    return list(groups.values())


def _cites(citation: dict[str, Any], evidence: Iterable[GoldEvidence]) -> bool:
    for gold in evidence:
        if gold.fact and metrics.contains_fact(str(citation.get("passage", "")), gold.fact):
            return True
        if gold.is_article(
            title=str(citation.get("title", "")),
            url=str(citation.get("url", "")),
            article_id=str(citation.get("article_id", "")),
        ):
            return True
    return False


def wrong_because(question: Question, prediction: Prediction) -> str:
    """Why an answer is not right ("" when it is): refused or not as it should be, a phrase
    missing or present, or no gold answer matched (leniently, or by the short answer's
    token F1 of at least 0.5)."""
    if question.unanswerable:
        return "" if prediction.refused else "answered a question to refuse"
    if prediction.refused:
        return "refused"
    said = metrics.strip_citations(prediction.answer)
    missing = [p for p in question.must_contain if not metrics.contains_phrase(said, p)]
    if missing:
        return f"lacks {missing[0]!r}"
    present = [p for p in question.must_not_contain if metrics.contains_phrase(said, p)]
    if present:
        return f"contains {present[0]!r}"
    if question.answers and not any(metrics.lenient_match(said, gold) for gold in question.answers):
        shorts = [prediction.short_text, prediction.verdict or ""]
        if max(metrics.token_f1(s, question.answers) for s in shorts) < metrics.SHORT_F1_RIGHT:
            return "matches no gold answer"
    return ""


def _verdict_scores(question: Question, prediction: Prediction) -> dict[str, float | None]:
    golds = {metrics.yes_no(a) for a in question.answers}
    if not question.answers or None in golds:
        return {}
    gold_yes = float("yes" in golds)
    scores: dict[str, float | None] = {
        "verdict_coverage": float(prediction.verdict is not None),
        "yes_baseline": gold_yes,
    }
    if prediction.verdict is not None:
        scores["verdict_accuracy"] = float(prediction.verdict.lower() in golds)
        scores["yes_on_verdicts"] = gold_yes
    return scores


def score_answer(question: Question, prediction: Prediction) -> dict[str, float | None]:
    """Every per-question score; None where a metric does not apply (no evidence, say).

    A refusal counts as answering "Insufficient information."; [n] markers are removed."""
    said = metrics.NO_ANSWER if prediction.refused else metrics.strip_citations(prediction.answer)
    scores: dict[str, float | None] = dict.fromkeys(ALL_METRICS)
    scores["lenient"] = float(any(metrics.lenient_match(said, g) for g in question.answers))
    scores["exact_match"] = metrics.exact_match(said, question.answers)
    scores["token_f1"] = metrics.token_f1(said, question.answers)
    scores["refused"] = float(prediction.refused)
    scores["right"] = float(not wrong_because(question, prediction))
    verdicts = _verdict_scores(question, prediction)
    scores.update(verdicts)
    if question.answers and not question.unanswerable and not verdicts:
        scores["short_f1"] = metrics.token_f1(prediction.short_text, question.answers)
    facts = question.facts
    if facts and not question.unanswerable:
        ranks = metrics.fact_ranks([p["text"] for p in prediction.passages[:DEPTH]], facts)
        scores["Hits@4"] = metrics.hits_at(ranks, 4)
        scores["Hits@10"] = metrics.hits_at(ranks, 10)
        scores["MRR@10"] = metrics.reciprocal_rank(ranks, 10)
        scores["MAP@10"] = metrics.average_precision(ranks, facts, 10)
        scores["recall@10"] = metrics.evidence_recall(ranks, facts, 10)
        scores["complete@10"] = metrics.evidence_complete(ranks, facts, 10)
    if question.evidence and not question.unanswerable:
        citations = prediction.citations
        if citations:
            supported = sum(_cites(c, question.evidence) for c in citations)
            scores["citation_precision"] = supported / len(citations)
        groups = evidence_groups(question)
        cited = sum(any(_cites(c, group) for c in citations) for group in groups)
        scores["citation_recall"] = cited / len(groups)
    return scores


def question_record(
    question: Question, prediction: Prediction, history: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """One line of answers.jsonl: the question (and the conversation before it), the
    prediction, its scores and timings."""
    facts = question.facts
    texts = [p["text"] for p in prediction.passages[:DEPTH]]
    return {
        "id": question.id,
        "question": question.question,
        "question_type": question.question_type,
        "gold_answers": list(question.answers),
        "unanswerable": question.unanswerable,
        "follow_up_of": question.follow_up_of or None,
        "history": [list(turn) for turn in history],
        "answer": prediction.answer,
        "short_answer": prediction.short_answer,
        "short_answers": prediction.short_answers,
        "verdict": prediction.verdict,
        "refused": prediction.refused,
        "mode": prediction.mode,
        "citations": prediction.citations,
        "passages": prediction.passages,
        "fact_ranks": metrics.fact_ranks(texts, facts) if facts else [],
        "scores": score_answer(question, prediction),
        "wrong_because": wrong_because(question, prediction),
        "latency_s": round(prediction.latency_s, 4),
        "first_token_s": round(prediction.first_token_s, 4),
        "error": None,
    }


def _latency(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": metrics.percentile(values, 50),
        "p95": metrics.percentile(values, 95),
        "mean": metrics.mean(values),
    }


def _refusals(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Refusal as a detector of unanswerable questions: precision, recall and the counts."""
    unanswerable = sum(r["unanswerable"] for r in rows)
    refused = sum(r["refused"] for r in rows)
    right = sum(r["unanswerable"] and r["refused"] for r in rows)
    return {
        "unanswerable": unanswerable,
        "refused": refused,
        "refused_unanswerable": right,
        "refused_answerable": refused - right,
        "answered_unanswerable": unanswerable - right,
        "precision": metrics.ratio(right, refused),
        "recall": metrics.ratio(right, unanswerable),
    }


def summarise_answer_group(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each score over the questions where it applies, with how many those are."""
    scores: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for name in ALL_METRICS:
        values = [r["scores"][name] for r in rows if r["scores"].get(name) is not None]
        scores[name] = metrics.mean(values) if values else None
        counts[name] = len(values)
    return {
        "questions": len(rows),
        "scores": scores,
        "counts": counts,
        "citations_per_answer": metrics.mean(
            [len(r["citations"]) for r in rows if not r["refused"]]
        ),
        "refusals": _refusals(rows),
        "latency_s": _latency([r["latency_s"] for r in rows]),
        "first_token_s": _latency([r["first_token_s"] for r in rows]),
    }


def summarise_answers(rows: Sequence[dict[str, Any]], *, failed: int = 0) -> dict[str, Any]:
    """Scores overall and per question type, refusals, latency, answer modes seen."""
    types = sorted({r["question_type"] for r in rows})
    return {
        "overall": summarise_answer_group(rows),
        "by_type": {
            t: summarise_answer_group([r for r in rows if r["question_type"] == t]) for t in types
        },
        "modes": dict(Counter(r["mode"] for r in rows)),
        "failed": failed,
    }


def without_timings(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary less everything that depends on the clock (to compare two runs)."""
    out = json.loads(json.dumps(summary))
    for block in [out["overall"], *out["by_type"].values()]:
        block.pop("latency_s", None)
        block.pop("first_token_s", None)
    return out
