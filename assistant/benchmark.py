"""Answer-level evaluation: a question file run through the assistant (in this process or over
a server's HTTP API), every answer scored against its gold answer and evidence, resumably."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from assistant import metrics
from assistant.engine import Engine
from index.articles import article_id as stored_article_id
from index.config import Settings
from index.errors import NewsAssistantError

DEPTH = 10  # passages asked for: every retrieval metric looks at the top 10
RETRIEVAL_METRICS = ("Hits@4", "Hits@10", "MRR@10", "MAP@10", "recall@10", "complete@10")
ANSWER_METRICS = ("lenient", "exact_match", "token_f1")
CITATION_METRICS = ("citation_precision", "citation_recall")
ALL_METRICS = (*ANSWER_METRICS, *RETRIEVAL_METRICS, *CITATION_METRICS, "refused")
ANSWERS_FILE = "answers.jsonl"
MANIFEST_FILE = "run.json"
SUMMARY_FILE = "summary.json"
# What must be the same for a rerun to add to the answers already in --out.
RESUME_KEYS = ("questions_sha1", "target", "answer_mode", "k")


class EvaluationError(NewsAssistantError):
    """The evaluation cannot go on: a bad question file, an unreachable server, a clash."""


class QuestionFailed(NewsAssistantError):
    """One question got no answer (a server error); recorded, and retried on the next run."""


# The question file ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoldEvidence:
    """One piece of gold evidence: a quoted fact, the article it is from, or both."""

    fact: str = ""
    title: str = ""
    url: str = ""
    article_id: str = ""

    @property
    def article_key(self) -> str:
        """What tells this evidence's article from another ("" when none is named)."""
        return self.url or self.article_id or self.title

    def is_article(self, *, title: str, url: str, article_id: str) -> bool:
        """Whether an indexed article is this evidence's: by URL or title; or by an id, which
        may also be the article's URL or title, the id the index stores, or the id the
        corpus file gave an article without a URL (the index stores a hash of it)."""
        if metrics.same_article(
            title=title,
            url=url,
            article_id=article_id,
            gold_title=self.title,
            gold_url=self.url,
            gold_id=self.article_id,
        ):
            return True
        if not self.article_id:
            return False
        given = stored_article_id(url="", title="", body="", given=self.article_id)
        return metrics.same_article(
            title=title,
            url=url,
            article_id=article_id,
            gold_title=self.article_id,
            gold_url=self.article_id,
            gold_id=given,
        )


@dataclass(frozen=True, slots=True)
class Question:
    """A benchmark question with its gold answers and evidence."""

    id: str
    question: str
    answers: tuple[str, ...]
    question_type: str
    evidence: tuple[GoldEvidence, ...] = ()

    @property
    def facts(self) -> list[str]:
        return [e.fact for e in self.evidence if e.fact]

    @property
    def unanswerable(self) -> bool:
        """Whether the gold answer is "Insufficient information" (a refusal is right)."""
        return any(metrics.is_no_answer(a) for a in self.answers)


@dataclass(frozen=True, slots=True)
class QuestionFile:
    path: Path
    format: str  # "multihop-rag" or "generic"
    questions: list[Question]
    sha1: str


def _text(value: object, where: str, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise EvaluationError(
            f"{where}: field '{name}': expected text, found {type(value).__name__}"
        )
    return str(value).strip()


def _evidence(value: object, where: str) -> GoldEvidence:
    if isinstance(value, str):
        return GoldEvidence(fact=value)
    if not isinstance(value, dict):
        raise EvaluationError(f"{where}: field 'evidence': items are texts or objects")
    return GoldEvidence(
        fact=_text(value.get("fact", value.get("text")), where, "evidence.fact"),
        title=_text(value.get("title"), where, "evidence.title"),
        url=_text(value.get("url"), where, "evidence.url"),
        article_id=_text(value.get("article_id", value.get("id")), where, "evidence.article_id"),
    )


def _list(value: object, where: str, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvaluationError(f"{where}: field '{name}': expected a list")
    return value


def parse_question(record: object, where: str, default_id: str) -> Question:
    """One record of a question file: generic ({question, answer | answers, evidence,
    article_ids, question_type}) or MultiHop-RAG ({query, answer, evidence_list, ...})."""
    if not isinstance(record, dict):
        raise EvaluationError(f"{where}: expected a JSON object")
    question = _text(record.get("question", record.get("query")), where, "question")
    if not question:
        raise EvaluationError(f"{where}: field 'question': missing or empty")
    given = record.get("answers", record.get("answer"))
    answers = [
        _text(a, where, "answers")
        for a in (given if isinstance(given, list) else [given] if given is not None else [])
    ]
    answers = [a for a in answers if a]
    if not answers:
        raise EvaluationError(f"{where}: field 'answer': missing or empty (or give 'answers')")
    evidence = [
        _evidence(item, where)
        for item in _list(record.get("evidence", record.get("evidence_list")), where, "evidence")
    ]
    evidence += [
        GoldEvidence(article_id=_text(item, where, "article_ids"))
        for item in _list(record.get("article_ids"), where, "article_ids")
    ]
    kind = record.get("question_type", record.get("type"))
    return Question(
        id=_text(record.get("id"), where, "id") or default_id,
        question=question,
        answers=tuple(answers),
        question_type=_text(kind, where, "question_type") or "all",
        evidence=tuple(e for e in evidence if e.fact or e.article_key),
    )


def load_questions(path: Path) -> QuestionFile:
    """Read a question file: JSON Lines (one question a line) or a JSON list (MultiHop-RAG's
    files, or the generic records in a list)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise EvaluationError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise EvaluationError(f"{path}: not UTF-8 text ({error.reason})") from None
    records: list[tuple[object, str, str]] = []
    if path.suffix.lower() == ".jsonl" or text.lstrip().startswith("{"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((json.loads(line), f"{path}:{number}", f"q{number}"))
            except json.JSONDecodeError as error:
                raise EvaluationError(f"{path}:{number}: not JSON: {error.msg}") from None
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise EvaluationError(f"{path}:{error.lineno}: not JSON: {error.msg}") from None
        if not isinstance(rows, list):
            raise EvaluationError(f"{path}: expected a list of questions (or JSON Lines)")
        records = [(row, f"{path}: item {i}", f"q{i}") for i, row in enumerate(rows)]
    questions = [parse_question(record, where, default) for record, where, default in records]
    if not questions:
        raise EvaluationError(f"{path}: no questions")
    seen: dict[str, str] = {}
    for (_, where, _), q in zip(records, questions, strict=True):
        if q.id in seen:
            raise EvaluationError(f"{where}: id {q.id!r} also at {seen[q.id]}")
        seen[q.id] = where
    upstream = all(isinstance(r, dict) and "evidence_list" in r for r, _, _ in records)
    return QuestionFile(
        path=path,
        format="multihop-rag" if upstream else "generic",
        questions=questions,
        sha1=hashlib.sha1(data).hexdigest(),
    )


def select_questions(
    questions: Sequence[Question],
    *,
    sample: int | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> list[Question]:
    """A seeded random `sample` (kept in file order), then the first `limit`."""
    chosen = list(questions)
    if sample is not None and sample < len(chosen):
        keep = set(random.Random(seed).sample(range(len(chosen)), sample))
        chosen = [q for i, q in enumerate(chosen) if i in keep]
    return chosen[:limit] if limit is not None else chosen


# What the assistant said ------------------------------------------------------------------------


@dataclass
class Prediction:
    """One answer as the evaluation keeps it: the same whether it came in-process or by HTTP."""

    answer: str
    refused: bool
    mode: str
    citations: list[dict[str, Any]]  # number, article_id, title, url, quote, passage
    passages: list[dict[str, Any]]  # ranked: chunk_id, article_id, title, url, source, text
    latency_s: float
    first_token_s: float

    @classmethod
    def from_answer(
        cls, data: dict[str, Any], latency_s: float, first_token_s: float
    ) -> Prediction:
        """From Answer.as_dict(), which is also the body of POST /api/ask."""
        return cls(
            answer=str(data["answer"]),
            refused=bool(data["refused"]),
            mode=str(data.get("mode", "")),
            citations=[
                {k: c.get(k, "") for k in ("number", "article_id", "title", "url", "quote")}
                | {"passage": c.get("passage", "")}
                for c in data.get("citations", [])
            ],
            passages=[
                {
                    k: p.get(k, "")
                    for k in ("chunk_id", "article_id", "title", "url", "source", "published")
                }
                | {"text": p.get("text", "")}
                for p in data.get("passages", [])
            ],
            latency_s=latency_s,
            first_token_s=first_token_s,
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prediction:
        """Back from a line of answers.jsonl."""
        return cls(
            answer=record["answer"],
            refused=record["refused"],
            mode=record["mode"],
            citations=record["citations"],
            passages=record["passages"],
            latency_s=record["latency_s"],
            first_token_s=record["first_token_s"],
        )


class Target(Protocol):
    """What answers the questions: the engine in this process, or a server."""

    def answer(self, question: str) -> Prediction: ...
    def describe(self) -> dict[str, Any]: ...


class InProcessTarget:
    """Engine.ask_stream; the first token is the first "delta" event."""

    def __init__(self, engine: Engine, *, k: int = DEPTH, use_llm: bool | None = None) -> None:
        self.engine, self.k, self.use_llm = engine, k, use_llm

    def answer(self, question: str) -> Prediction:
        started = time.perf_counter()
        first: float | None = None
        final = None
        for event in self.engine.ask_stream(question, k=self.k, use_llm=self.use_llm):
            if event.kind == "delta" and first is None:
                first = time.perf_counter() - started
            elif event.answer is not None:
                final = event.answer
        latency = time.perf_counter() - started
        assert final is not None
        return Prediction.from_answer(final.as_dict(), latency, latency if first is None else first)

    def describe(self) -> dict[str, Any]:
        settings = self.engine.settings
        return {
            "target": "in-process",
            "k": self.k,
            "answer_mode": "extractive"
            if self.use_llm is False or not settings.llm_url
            else f"llm:{settings.llm_model}",
            "llm_url": settings.llm_url if self.use_llm is not False else None,
            "index": str(settings.storage_dir),
            "collection": settings.collection,
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap": settings.chunk_overlap,
            "refusal_threshold": settings.refusal_threshold,
        }


class HttpTarget:
    """POST /api/ask on a running server. It is not streamed, so the time to the first token
    is the time to the whole response (the OpenAI-compatible stream carries no passages)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        k: int = DEPTH,
        use_llm: bool | None = None,
        timeout: float = 300.0,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.k, self.use_llm = k, use_llm
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.health: dict[str, Any] = {}

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise EvaluationError(f"{self.url}{path}: cannot reach the server: {error}") from None
        if response.status_code in (401, 403):
            raise EvaluationError(
                f"{self.url}{path}: {response.status_code}: the server wants an API token "
                "(--token); the one given, if any, is not it"
            )
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise QuestionFailed(f"HTTP {response.status_code}: {message}")
        return response.json()

    def check(self) -> dict[str, Any]:
        """The server's /api/health: that it answers, what it holds, its answer mode."""
        try:
            self.health = self._request("GET", "/api/health")
        except QuestionFailed as error:
            raise EvaluationError(f"{self.url}/api/health: {error}") from None
        return self.health

    def answer(self, question: str) -> Prediction:
        body: dict[str, Any] = {"question": question, "k": self.k}
        if self.use_llm is not None:
            body["use_llm"] = self.use_llm
        started = time.perf_counter()
        data = self._request("POST", "/api/ask", json=body)
        latency = time.perf_counter() - started
        return Prediction.from_answer(data, latency, latency)

    def describe(self) -> dict[str, Any]:
        mode = self.health.get("mode", "server default")
        return {
            "target": self.url,
            "k": self.k,
            "answer_mode": "extractive" if self.use_llm is False else mode,
            "server": self.health,
            "first_token": "time to the whole /api/ask response (not streamed)",
        }

    def close(self) -> None:
        self.client.close()


# Scores -----------------------------------------------------------------------------------------


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


def score_answer(question: Question, prediction: Prediction) -> dict[str, float | None]:
    """Every per-question score; None where a metric does not apply (no evidence, say).

    A refusal counts as answering "Insufficient information."; [n] markers are removed."""
    said = metrics.NO_ANSWER if prediction.refused else metrics.strip_citations(prediction.answer)
    scores: dict[str, float | None] = dict.fromkeys(ALL_METRICS)
    scores["lenient"] = float(any(metrics.lenient_match(said, g) for g in question.answers))
    scores["exact_match"] = metrics.exact_match(said, question.answers)
    scores["token_f1"] = metrics.token_f1(said, question.answers)
    scores["refused"] = float(prediction.refused)
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


def question_record(question: Question, prediction: Prediction) -> dict[str, Any]:
    """One line of answers.jsonl: the question, the prediction, its scores and timings."""
    facts = question.facts
    texts = [p["text"] for p in prediction.passages[:DEPTH]]
    return {
        "id": question.id,
        "question": question.question,
        "question_type": question.question_type,
        "gold_answers": list(question.answers),
        "unanswerable": question.unanswerable,
        "answer": prediction.answer,
        "refused": prediction.refused,
        "mode": prediction.mode,
        "citations": prediction.citations,
        "passages": prediction.passages,
        "fact_ranks": metrics.fact_ranks(texts, facts) if facts else [],
        "scores": score_answer(question, prediction),
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


def summarise_block(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
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


def summarise(rows: Sequence[dict[str, Any]], *, failed: int = 0) -> dict[str, Any]:
    """Scores overall and per question type, refusals, latency, answer modes seen."""
    types = sorted({r["question_type"] for r in rows})
    return {
        "overall": summarise_block(rows),
        "by_type": {
            t: summarise_block([r for r in rows if r["question_type"] == t]) for t in types
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


# A run ------------------------------------------------------------------------------------------


@dataclass
class BenchmarkRun:
    """Everything one `eval answers` run wrote: the settings, every answer, the summary."""

    out: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    failures: list[dict[str, Any]] = field(default_factory=list)
    answered_now: int = 0


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """The answers already in answers.jsonl, by id; the last line for an id wins. A line cut
    short by an interruption is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "id" in record:
            done[str(record["id"])] = record
    return done


def _earlier_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The run.json of the run in `folder`, if any, after checking this run may add to it."""
    path = folder / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    for key in RESUME_KEYS:
        if key in before and before[key] != manifest.get(key):
            raise EvaluationError(
                f"{folder} holds a run with {key} = {before[key]!r}, this one has "
                f"{manifest.get(key)!r}; give another --out to start a new run"
            )
    return before if isinstance(before, dict) else {}


def run_benchmark(
    questions: Sequence[Question],
    target: Target,
    out: Path,
    *,
    manifest: dict[str, Any] | None = None,
    progress: bool = True,
) -> BenchmarkRun:
    """Answer every question not already in `out`/answers.jsonl, appending one line each as
    it goes (so an interrupted run picks up where it stopped), then summarise them all."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = {**(manifest or {}), **target.describe(), "questions": len(questions)}
    before = _earlier_manifest(out, manifest)
    # Each session (first run, resumptions) with the code that answered in it.
    session = {"started": manifest.get("started"), "version": manifest.get("version")}
    manifest["sessions"] = [*before.get("sessions", []), session]
    manifest["started"] = before.get("started", manifest.get("started"))
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    answers = out / ANSWERS_FILE
    by_id = {q.id: q for q in questions}
    # Answers from an earlier run are scored again, so every figure comes from this code.
    done = {
        i: question_record(by_id[i], Prediction.from_record(r))
        for i, r in read_records(answers).items()
        if i in by_id and not r.get("error")
    }
    todo = [q for q in questions if q.id not in done]
    if answers.exists() and answers.stat().st_size:
        with answers.open("rb") as existing:
            existing.seek(-1, 2)
            cut_short = existing.read(1) != b"\n"
        if cut_short:  # an interrupted write: end that line so the next one stands alone
            with answers.open("a", encoding="utf-8") as sink:
                sink.write("\n")
    failures: list[dict[str, Any]] = []
    with (
        answers.open("a", encoding="utf-8") as sink,
        tqdm(
            total=len(questions),
            initial=len(questions) - len(todo),
            unit="question",
            desc="answers",
            disable=not progress,
        ) as bar,
    ):
        for question in todo:
            try:
                record = question_record(question, target.answer(question.question))
                done[question.id] = record
            except QuestionFailed as error:
                record = {"id": question.id, "question": question.question, "error": str(error)}
                failures.append(record)
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            bar.update(1)
    session["answered"] = len(todo) - len(failures)
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    records = [done[q.id] for q in questions if q.id in done]
    summary = summarise(records, failed=len(failures))
    (out / SUMMARY_FILE).write_text(
        json.dumps({"run": manifest, **summary}, indent=2, ensure_ascii=False) + "\n"
    )
    return BenchmarkRun(
        out=out,
        manifest=manifest,
        records=records,
        summary=summary,
        failures=failures,
        answered_now=len(todo) - len(failures),
    )


# The engine the in-process run asks --------------------------------------------------------------


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha1()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha1(path.read_bytes()).digest())
    return digest.hexdigest()


def index_settings(settings: Settings, corpus: Path, *, model_id: str) -> Settings:
    """The evaluation's own index for `corpus`: for a file the same one `eval retrieval`
    uses; for a folder one named by its files' contents and the chunking settings."""
    from assistant.evaluate import eval_settings

    if corpus.is_file():
        return eval_settings(settings, corpus, model_id=model_id)
    key = "\x1f".join(
        (_folder_digest(corpus), model_id, str(settings.chunk_tokens), str(settings.chunk_overlap))
    )
    return settings.with_changes(
        storage_dir=settings.storage_dir / f"eval-{hashlib.sha1(key.encode()).hexdigest()[:12]}",
        collection="eval",
        chroma_host=None,
    )


def local_engine(engine: Engine, corpus: Path, *, progress: bool = True) -> Engine:
    """An engine over the corpus's evaluation index (built on first use, reused after), with
    the given engine's settings (LLM included) and model."""
    from assistant.evaluate import build_eval_index

    embedder = engine.embedder
    own = index_settings(engine.settings, corpus, model_id=embedder.model_id)
    store = build_eval_index(corpus, settings=own, embedder=embedder, progress=progress)
    return Engine(own, embedder=embedder, store=store)


def unmatched_evidence(questions: Sequence[Question], engine: Engine) -> list[str]:
    """Evidence articles (by id, URL or title) that no article of the index is: each would
    count as never cited."""
    engine.store.sync_keyword_index(force=True)
    articles = {str(r.metadata.get("article_id")): r.metadata for r in engine.store.keyword.records}
    indexed = [
        (str(m.get("title", "")), str(m.get("url", "")), str(m.get("article_id", "")))
        for m in articles.values()
    ]
    missing = []
    for question in questions:
        for gold in question.evidence:
            if gold.fact or not gold.article_key:
                continue  # a fact is checked in the passages themselves
            if not any(gold.is_article(title=t, url=u, article_id=i) for t, u, i in indexed):
                missing.append(f"{question.id}: {gold.article_key}")
    return missing


def _code_version() -> str:
    """The package version and, in a git checkout, the commit ("+changes" when edited)."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("news-assistant")
    except PackageNotFoundError:
        found = "unknown"
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        command = ["git", "-C", str(repo), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return found
    return f"{found} ({commit}{'+changes' if dirty else ''})"


def questions_manifest(source: QuestionFile, **options: Any) -> dict[str, Any]:
    """What a run was asked to do, for run.json and the report."""
    return {
        "version": _code_version(),
        "questions_file": str(source.path),
        "questions_sha1": source.sha1,
        "format": source.format,
        **options,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_answer_eval(
    *,
    engine: Engine,
    questions_path: Path,
    out: Path,
    corpus: Path | None = None,
    url: str | None = None,
    token: str | None = None,
    k: int = DEPTH,
    use_llm: bool | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[BenchmarkRun, list[str]]:
    """The whole `eval answers` run: read and select the questions, then answer them with an
    engine over the corpus's evaluation index or with the server at `url`; returns the run
    and notes for the user."""
    source = load_questions(questions_path)
    questions = select_questions(source.questions, sample=sample, seed=seed, limit=limit)
    options: dict[str, Any] = {"limit": limit, "sample": sample, "seed": seed}
    notes: list[str] = []
    target: InProcessTarget | HttpTarget
    if url:
        target = HttpTarget(url, token=token, k=k, use_llm=use_llm)
        target.check()
    else:
        if corpus is None and source.format == "multihop-rag":
            from assistant.evaluate import DEFAULT_CORPUS

            corpus = DEFAULT_CORPUS
        if corpus is None:
            raise EvaluationError("--corpus: give the articles the questions are about")
        local = local_engine(engine, corpus, progress=progress)
        options["corpus"] = str(corpus)
        missing = unmatched_evidence(questions, local)
        if missing:
            notes.append(
                f"{len(missing)} evidence article(s) match no indexed article by id, URL or "
                f"title and will count as never cited, e.g. {missing[0]}"
            )
        target = InProcessTarget(local, k=k, use_llm=use_llm)
    try:
        # The first answer loads indexes and models; it is not one of the timed ones.
        target.answer("warm-up: what happened this week?")
        run = run_benchmark(
            questions,
            target,
            out,
            manifest=questions_manifest(source, **options),
            progress=progress,
        )
    finally:
        if isinstance(target, HttpTarget):
            target.close()
    return run, notes
