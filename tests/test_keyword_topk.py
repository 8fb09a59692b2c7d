"""BM25 top-k without scoring every chunk of a common term (MaxScore): the same chunks and
scores as scoring them all, within any filter, and the common terms' postings never walked."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.engine import Engine
from assistant.retrieve import question_probes
from index import keyword_state
from index.keyword_state import _best, _State

# As users ask: names, several parts, common words that most chunks hold.
QUESTIONS = [
    "What did Lavrov say about NATO expansion and the security guarantees?",
    "Which sanctions did the White House announce against Russia in February 2022?",
    "What did the President say about Ukraine, and what did the Secretary of State add?",
    "How did the United States respond to the Russian military build-up near Ukraine?",
    "What was said at the press briefing about the economy and energy prices?",
    "Did the Kremlin deny plans to invade Ukraine?",
    "the the and of said",
]


def _probes(engine: Engine) -> list[str]:
    retriever = engine.retriever
    probes = [
        p for q in QUESTIONS for p in question_probes(retriever.understand(q), retriever.options)
    ]
    return list(dict.fromkeys(probes))


@pytest.fixture
def state(small_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> _State:
    """The small corpus's keyword state, with MaxScore on for any query of 50+ postings (the
    corpus is small: the default leaves such queries to be scored whole)."""
    monkeypatch.setattr(keyword_state, "EXHAUSTIVE_POSTINGS", 50)
    found = small_engine.retriever.view().keyword_state
    assert found is not None
    return found


def _masks(size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "all": np.ones(size, dtype=bool),
        "half": rng.random(size) < 0.5,
        "a tenth": rng.random(size) < 0.1,
        "none": np.zeros(size, dtype=bool),
    }


@pytest.mark.parametrize("k", [1, 5, 60])
def test_top_rows_are_those_of_scoring_every_chunk(
    state: _State, small_engine: Engine, k: int
) -> None:
    size = len(state.records)
    for name, allowed in _masks(size).items():
        for probe in _probes(small_engine):
            want = _best(*state.top_scores(probe), allowed, k)
            got = state.top_rows(probe, k, allowed)
            assert got.size == want.size, (name, probe)
            assert allowed[got].all()
            # Ties at the k-th score may go either way; the scores may not.
            rows, scores = state.top_scores(probe)
            at = dict(zip(rows.tolist(), scores.tolist(), strict=True))
            assert [at[r] for r in got.tolist()] == [at[r] for r in want.tolist()], (name, probe)


def test_scores_at_are_the_full_scores(state: _State, small_engine: Engine) -> None:
    everyone = np.arange(len(state.records) + 3)  # and rows past the end: 0
    for probe in _probes(small_engine):
        rows, scores = state.top_scores(probe)
        full = np.zeros(everyone.size, dtype=np.float32)
        full[rows] = scores
        np.testing.assert_allclose(state.scores_at(probe, everyone), full, rtol=1e-6)


def test_common_terms_are_looked_up_not_walked(
    state: _State, small_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    walked: list[int] = []
    summed = keyword_state._summed

    def counting(terms: list[tuple[keyword_state._Term, float]], n: int) -> object:
        walked.append(sum(t.rows.size for t, _ in terms))
        return summed(terms, n)

    monkeypatch.setattr(keyword_state, "_summed", counting)
    allowed = np.ones(len(state.records), dtype=bool)
    saved = 0
    for probe in _probes(small_engine):
        walked.clear()
        state.top_rows(probe, 5, allowed)
        total = sum(t.rows.size for t, _ in state.weighted_terms(probe))
        saved += max(walked) < total
    assert saved >= 3  # questions whose commonest terms were never walked


def test_remembered_term_scores_stay_within_their_bytes_and_keep_the_recent(
    small_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The least recently used terms are forgotten first, and never more than the bound is
    kept: a question's common terms stay while rare ones come and go."""
    source = small_engine.retriever.view().keyword_state
    assert source is not None
    fresh = _State.make(source.segments, source.alive, source.value, "lru", None)
    terms = ["said", "russia", "ukraine", "nato", "sanctions", "president", "security"]
    sizes = {
        t: fresh.term_scores(t).rows.nbytes + fresh.term_scores(t).tf_part.nbytes for t in terms
    }
    assert fresh.term_scores("said").rows.dtype == np.int32
    bound = sizes["said"] + sizes["russia"] + sizes["ukraine"]
    monkeypatch.setattr(keyword_state, "SCORED_BYTES_KEPT", bound)
    fresh = _State.make(source.segments, source.alive, source.value, "lru", None)
    for term in ["said", "russia", "ukraine", "said", "nato", "sanctions"]:
        fresh.term_scores(term)
        assert fresh._scored_bytes[0] <= bound
        assert fresh._scored_bytes[0] == sum(sizes[t] for t in fresh._scored)
    assert "said" in fresh._scored  # used again: kept
    assert "russia" not in fresh._scored  # the least recently used: forgotten first
    kept = fresh.term_scores("said")
    assert kept is fresh.term_scores("said")  # remembered, not made again


def test_the_kth_best_score_is_exact_when_only_those_over_a_sample_floor_are_ranked() -> None:
    rng = np.random.default_rng(7)
    for size in (0, 5, 60, 1_919, 1_920, 5_000, 200_000):
        for scores in (
            rng.random(size),
            np.round(rng.random(size), 2),  # many ties at every score
            np.sort(rng.random(size)),  # the best at the end, out of most of the sample
            np.repeat(0.5, size),
        ):
            for k in (1, 10, 60):
                want = float(np.sort(scores)[-k]) if scores.size >= k else 0.0
                assert keyword_state._kth(scores, k) == want, (size, k)
