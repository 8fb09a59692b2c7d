"""Retrieval metrics on small hand-made cases whose right answers are worked out by hand."""

from __future__ import annotations

import pytest

from evaluation import metrics

FACT_A = "The central bank raised rates by half a point."
FACT_B = "Shares fell 3% in early trading."
FACT_C = "The minister resigned on Tuesday."


def chunk(*sentences: str) -> str:
    return " ".join(("Filler text about nothing in particular.", *sentences, "More filler."))


def test_spaces_and_newlines_are_ignored_but_other_white_space_is_not() -> None:
    assert metrics.squeeze("a b\nc  d") == "abcd"
    # The benchmark removes only " " and "\n": a fact whose words wrap onto a new line, or
    # whose spacing differs, still matches ...
    wrapped = "Filler. The central bank raised\nrates by half   a point. More."
    assert metrics.fact_ranks([wrapped], [FACT_A]) == [1]
    # ... even with the words run together, a quirk of the upstream scripts
    assert metrics.fact_ranks(["Thecentralbankraisedratesbyhalfapoint."], [FACT_A]) == [1]
    # but a tab is not removed, and a fact cut between two chunks is found in neither
    assert metrics.fact_ranks(["The central bank\traised rates by half a point."], [FACT_A]) == [
        None
    ]
    half = FACT_A.split(" by ")
    assert metrics.fact_ranks([half[0], "by " + half[1]], [FACT_A]) == [None]


def test_ranks_hits_reciprocal_rank_and_average_precision() -> None:
    retrieved = [
        chunk(),
        chunk(FACT_A),  # rank 2
        chunk(),
        chunk(),
        chunk(FACT_B),  # rank 5
        *[chunk() for _ in range(5)],
        chunk(FACT_C),  # rank 11: outside every @10 metric
    ]
    facts = [FACT_A, FACT_B, FACT_C]
    ranks = metrics.fact_ranks(retrieved, facts)
    assert ranks == [2, 5, 11]
    assert metrics.hits_at(ranks, 4) == 1.0
    assert metrics.hits_at(ranks, 1) == 0.0
    assert metrics.reciprocal_rank(ranks, 10) == 0.5
    assert metrics.average_precision(ranks, facts, 10) == pytest.approx((1 / 2 + 1 / 5) / 3)
    assert metrics.evidence_recall(ranks, facts, 4) == pytest.approx(1 / 3)
    assert metrics.evidence_recall(ranks, facts, 6) == pytest.approx(2 / 3)
    assert metrics.evidence_complete(ranks, facts, 10) == 0.0
    assert metrics.evidence_complete(ranks, facts, 11) == 1.0


def test_two_facts_in_one_chunk_both_count_at_its_rank() -> None:
    retrieved = [chunk(), chunk(), chunk(FACT_A, FACT_B)]
    ranks = metrics.fact_ranks(retrieved, [FACT_A, FACT_B])
    assert ranks == [3, 3]
    assert metrics.average_precision(ranks, [FACT_A, FACT_B]) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank(ranks) == pytest.approx(1 / 3)
    assert metrics.evidence_complete(ranks, [FACT_A, FACT_B], 4) == 1.0


def test_a_repeated_gold_fact_is_found_once_but_counted_twice_in_map() -> None:
    facts = [FACT_A, FACT_A]
    ranks = metrics.fact_ranks([chunk(FACT_A)], facts)
    # upstream: the second copy is already "found", and the divisor is min(len(gold), 10) = 2
    assert metrics.average_precision(ranks, facts) == pytest.approx(0.5)
    assert metrics.evidence_recall(ranks, facts, 4) == 1.0
    assert metrics.evidence_complete(ranks, facts, 4) == 1.0


def test_map_divides_by_at_most_ten_facts() -> None:
    facts = [f"Fact number {i} is here." for i in range(12)]
    retrieved = [chunk(f) for f in facts[:10]]
    ranks = metrics.fact_ranks(retrieved, facts)
    expected = sum(1 / r for r in range(1, 11)) / 10
    assert metrics.average_precision(ranks, facts) == pytest.approx(expected)


def test_benchmark_metrics_average_over_queries() -> None:
    found_first = [chunk(FACT_A), chunk()]
    found_late = [chunk() for _ in range(5)] + [chunk(FACT_B)]
    missed = [chunk() for _ in range(10)] + [chunk(FACT_C)]
    result = metrics.benchmark_retrieval_metrics(
        [found_first, found_late, missed], [[FACT_A], [FACT_B, FACT_C], [FACT_C]]
    )
    assert result["Hits@10"] == pytest.approx(2 / 3)
    assert result["Hits@4"] == pytest.approx(1 / 3)
    assert result["MRR@10"] == pytest.approx((1 + 1 / 6 + 0) / 3)
    assert result["MAP@10"] == pytest.approx((1 + (1 / 6) / 2 + 0) / 3)
    assert metrics.benchmark_retrieval_metrics([], [])["Hits@10"] == 0.0


def test_percentile_interpolates() -> None:
    assert metrics.percentile([], 50) == 0.0
    assert metrics.percentile([5.0], 95) == 5.0
    assert metrics.percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert metrics.percentile(list(map(float, range(101))), 95) == pytest.approx(95.0)
