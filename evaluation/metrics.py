"""Pure metric functions: retrieval metrics as MultiHop-RAG's scripts define them, and more."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlsplit

DEPTH = 10  # passages kept per question: every retrieval metric looks at the top 10 at most


def squeeze(text: str) -> str:
    """Text with every space and newline removed, as the benchmark compares it."""
    return text.replace(" ", "").replace("\n", "")


def fact_ranks(retrieved: Sequence[str], facts: Sequence[str]) -> list[int | None]:
    """For each gold fact, the first rank (1-based) whose text contains it; None if none does."""
    chunks = [squeeze(text) for text in retrieved]
    ranks: list[int | None] = []
    for fact in facts:
        needle = squeeze(fact)
        ranks.append(next((r for r, chunk in enumerate(chunks, 1) if needle in chunk), None))
    return ranks


def _found(ranks: Sequence[int | None], k: int) -> list[int]:
    return [r for r in ranks if r is not None and r <= k]


def hits_at(ranks: Sequence[int | None], k: int) -> float:
    """1 if any chunk in the top `k` contains a gold fact, else 0."""
    return 1.0 if _found(ranks, k) else 0.0


def reciprocal_rank(ranks: Sequence[int | None], k: int = 10) -> float:
    """1 / the rank of the first chunk holding a gold fact within the top `k`, else 0."""
    found = _found(ranks, k)
    return 1.0 / min(found) if found else 0.0


def average_precision(ranks: Sequence[int | None], facts: Sequence[str], k: int = 10) -> float:
    """The benchmark's MAP@k term: sum of 1/rank over distinct facts, by the first rank that
    holds each, divided by min(number of gold facts, k) (duplicate facts count there only)."""
    if not facts:
        return 0.0
    first: dict[str, int] = {}
    for fact, rank in zip(facts, ranks, strict=True):
        if rank is not None and rank <= k:
            first.setdefault(squeeze(fact), rank)
    return sum(1.0 / r for r in first.values()) / min(len(facts), k)


def evidence_recall(ranks: Sequence[int | None], facts: Sequence[str], k: int) -> float:
    """Share of the distinct gold facts found in the top `k`."""
    distinct: dict[str, bool] = {}
    for fact, rank in zip(facts, ranks, strict=True):
        key = squeeze(fact)
        distinct[key] = distinct.get(key, False) or (rank is not None and rank <= k)
    return sum(distinct.values()) / len(distinct) if distinct else 0.0


def evidence_complete(ranks: Sequence[int | None], facts: Sequence[str], k: int) -> float:
    """1 if every gold fact is in the top `k`, else 0."""
    return 1.0 if facts and evidence_recall(ranks, facts, k) == 1.0 else 0.0


def benchmark_retrieval_metrics(
    retrieved_lists: Sequence[Sequence[str]], gold_lists: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Hits@10, Hits@4, MAP@10 and MRR@10 over many queries, as the benchmark computes them."""
    if not gold_lists:
        return {"Hits@10": 0.0, "Hits@4": 0.0, "MAP@10": 0.0, "MRR@10": 0.0}
    per_query = [
        (ranks, facts)
        for retrieved, facts in zip(retrieved_lists, gold_lists, strict=True)
        for ranks in [fact_ranks(retrieved[:10], facts)]
    ]
    n = len(per_query)
    return {
        "Hits@10": sum(hits_at(r, 10) for r, _ in per_query) / n,
        "Hits@4": sum(hits_at(r, 4) for r, _ in per_query) / n,
        "MAP@10": sum(average_precision(r, f, 10) for r, f in per_query) / n,
        "MRR@10": sum(reciprocal_rank(r, 10) for r, _ in per_query) / n,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks; 0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# Answers ---------------------------------------------------------------------------------------

NO_ANSWER = "Insufficient information."  # what MultiHop-RAG's null queries expect
_UPSTREAM_ANSWER = re.compile(r'The answer to the question is "(.*?)"')
_CITATION_MARKER = re.compile(r"\s*\[\d+(?:\s*[,-]\s*\d+)*\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def strip_citations(text: str) -> str:
    """The answer without its [n] markers (they are not part of what it says)."""
    return _CITATION_MARKER.sub("", text).strip()


def upstream_answer(text: str) -> str:
    """What MultiHop-RAG's qa_evaluate.py scores: the X of 'The answer to the question is "X"'
    when the text says so, else the whole text."""
    if "The answer" not in text:
        return text
    match = _UPSTREAM_ANSWER.search(text)
    return match.group(1) if match else text


def lenient_match(prediction: str, gold: str) -> bool:
    """MultiHop-RAG's own rule: correct if the lower-cased, whitespace-split word sets share any
    word. Punctuation stays attached ("yes." is not "yes"), and a stop word shared with the
    gold answer ("the") is enough."""
    words = set(upstream_answer(prediction).lower().split())
    return bool(words & set(gold.lower().split()))


def normalise_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def is_no_answer(gold: str) -> bool:
    """Whether a gold answer says the question cannot be answered ("Insufficient information")."""
    return normalise_answer(gold) == normalise_answer(NO_ANSWER)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1 if the normalised prediction equals any normalised gold answer, else 0."""
    guess = normalise_answer(prediction)
    return 1.0 if any(guess == normalise_answer(g) for g in golds) else 0.0


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD's token F1 of the normalised texts, the best over the gold answers."""
    guess = normalise_answer(prediction).split()
    best = 0.0
    for gold in golds:
        truth = normalise_answer(gold).split()
        if not guess or not truth:
            best = max(best, float(guess == truth))
            continue
        common = sum((Counter(guess) & Counter(truth)).values())
        if common:
            precision, recall = common / len(guess), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when nothing was counted (undefined, not 0)."""
    return numerator / denominator if denominator else None


# Citations -------------------------------------------------------------------------------------


def _title_key(title: str) -> str:
    return " ".join(unicodedata.normalize("NFC", title).split()).casefold()


def _url_key(url: str) -> str:
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return url.strip()
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}" + (
        f"?{parts.query}" if parts.query else ""
    )


def same_article(
    *, title: str, url: str, article_id: str, gold_title: str, gold_url: str, gold_id: str
) -> bool:
    """Whether a cited article is a gold one: by id, by URL (scheme, case of the host and a
    trailing slash aside) or by title (case and spacing aside); empty fields never match."""
    return bool(
        (gold_id and article_id and gold_id == article_id)
        or (gold_url and url and _url_key(gold_url) == _url_key(url))
        or (gold_title and title and _title_key(gold_title) == _title_key(title))
    )


def contains_fact(passage: str, fact: str) -> bool:
    """The benchmark's evidence test: the fact is in the passage once spaces/newlines go."""
    needle = squeeze(fact)
    return bool(needle) and needle in squeeze(passage)


# Short answers, verdicts and answers judged right ---------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[A-Z0-9])")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "\u00a0": " "})
SHORT_F1_RIGHT = 0.5  # a short answer this close to a gold answer counts as right


def first_sentence(text: str) -> str:
    """The first sentence of an answer, its [n] markers removed."""
    plain = strip_citations(text)
    return _SENTENCE_END.split(plain, maxsplit=1)[0].strip() if plain else ""


def yes_no(gold: str) -> str | None:
    """ "yes" or "no" when a gold answer is one of them, else None."""
    word = normalise_answer(gold)
    return word if word in ("yes", "no") else None


def _phrase_key(text: str) -> str:
    return " ".join(text.translate(_QUOTES).casefold().split())


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether `phrase` is in `text`, case, spacing and curly quotes aside."""
    return _phrase_key(phrase) in _phrase_key(text)
