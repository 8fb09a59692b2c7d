"""Pure metric functions: retrieval metrics as MultiHop-RAG's scripts define them, and more."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
