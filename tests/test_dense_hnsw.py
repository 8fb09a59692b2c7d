"""Dense search through Chroma's HNSW index (dense_search = "hnsw") beside the exact one, on the
session's small corpus in a real embedded Chroma with the real model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from assistant.config import Settings
from assistant.corpus_view import Cosines, Filters
from assistant.retrieve import Passage, Retriever
from index.segment_vectors import SavedVectors
from index.store import ChunkStore

if TYPE_CHECKING:
    from assistant.engine import Engine

QUESTIONS = [
    "What did Lavrov say about security guarantees and NATO?",
    "Which country did the President discuss with European allies?",
    "What did the White House say about the pandemic and vaccines?",
    "How did the administration describe the economy and jobs in its first year?",
    "Who did the President meet in February 2022?",
]


def _retriever(engine: Engine, mode: str) -> Retriever:
    settings = engine.settings.with_changes(dense_search=mode)
    return Retriever(settings, store=engine.store, embedder=engine.embedder)


def _keys(passages: list[Passage]) -> list[tuple[str, int, int, str]]:
    return [(p.chunk_id, p.start, p.end, p.text) for p in passages]


@pytest.fixture(scope="module")
def both(small_engine: Engine) -> tuple[Retriever, Retriever]:
    return _retriever(small_engine, "exact"), _retriever(small_engine, "hnsw")


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWS_ASSISTANT_DENSE_SEARCH", raising=False)
    assert Settings().dense_search == "hnsw"
    monkeypatch.setenv("NEWS_ASSISTANT_DENSE_SEARCH", "exact")
    assert Settings().dense_search == "exact"


@pytest.mark.parametrize("question", QUESTIONS)
def test_hnsw_and_exact_give_the_same_passages(
    both: tuple[Retriever, Retriever], question: str
) -> None:
    exact, hnsw = both
    want = exact.search(question, k=8)
    assert want
    got = hnsw.search(question, k=8)
    assert _keys(got) == _keys(want)
    for a, b in zip(got, want, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-5)


def test_the_hnsw_view_holds_no_vectors_and_reads_only_what_a_search_needs(
    small_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ChunkStore(small_engine.settings)
    asked: list[int] = []  # of Chroma
    read: list[int] = []  # from the keyword segments' vectors files
    embeddings, take = store.embeddings, SavedVectors.take

    def counted(chunk_ids: Any) -> dict[str, np.ndarray]:
        asked.append(len(chunk_ids))
        return embeddings(chunk_ids)

    def counted_take(self: SavedVectors, rows: Any) -> np.ndarray:
        read.append(len(rows))
        return take(self, rows)

    monkeypatch.setattr(store, "embeddings", counted)
    monkeypatch.setattr(SavedVectors, "take", counted_take)
    settings = small_engine.settings.with_changes(dense_search="hnsw")
    retriever = Retriever(settings, store=store, embedder=small_engine.embedder)
    view = retriever.view()
    assert view.records and not view.holds_vectors
    assert view.matrix.size == 0 and not asked and not read  # no vector read to build the view
    assert retriever.search(QUESTIONS[0], k=4)
    assert 0 < sum(read) < len(view.records)  # the candidates' and excerpts' chunks only
    assert not asked  # the store was written through the pipeline: its segments hold them

    settings = settings.with_changes(dense_search="exact")
    held = Retriever(settings, store=store, embedder=small_engine.embedder).view()
    assert held.holds_vectors and held.matrix.shape == (len(held.records), 384)


def test_filters_become_a_chroma_where_clause() -> None:
    assert Filters().where() is None
    assert Filters(outlets=("TASS",)).where() == {"source": {"$in": ["TASS"]}}
    assert Filters(date_from="2022-02-01", date_to="2022-02-10").where() == {
        "$and": [
            {"date_int": {"$gt": 0}},
            {"date_int": {"$gte": 20220201}},
            {"date_int": {"$lte": 20220210}},
        ]
    }


@pytest.mark.parametrize(
    "filters",
    [
        Filters(outlets=("The White House",)),
        Filters(date_from="2022-02-01", date_to="2022-02-10"),
        Filters(date_to="2022-01-20", outlets=("The White House",)),
    ],
)
def test_filters_are_honoured_on_the_hnsw_path(
    both: tuple[Retriever, Retriever], filters: Filters
) -> None:
    exact, hnsw = both
    view = hnsw.view()
    allowed = view.mask(filters)
    assert 0 < allowed.sum() < len(view.records)
    vector = hnsw.embedder.embed([QUESTIONS[0]])
    (nearest,) = Cosines(view, vector).nearest(20, allowed, filters, [0])
    assert nearest.size and allowed[nearest].all()
    for question in QUESTIONS[:3]:
        got = hnsw.search(question, k=6, filters=filters)
        rows = [view.row_of(p.chunk_id) for p in got]
        assert got and all(r is not None and filters.admits(view.records[r].metadata) for r in rows)
        assert _keys(got) == _keys(exact.search(question, k=6, filters=filters))


def test_nearest_rows_agree_with_the_exact_ones(both: tuple[Retriever, Retriever]) -> None:
    exact, hnsw = both
    vector = exact.embedder.embed([QUESTIONS[1]])
    everything = np.ones(len(exact.view().records), dtype=bool)
    (want,) = Cosines(exact.view(), vector).nearest(30, everything, None, [0])
    got_cosines = Cosines(hnsw.view(), vector)
    (got,) = got_cosines.nearest(30, everything, None, [0])
    assert got.tolist() == want.tolist()
    assert np.allclose(got_cosines.at(got), Cosines(exact.view(), vector).at(want), atol=1e-5)


def test_warming_the_vector_index_leaves_search_as_it_was(
    small_engine: Engine, tmp_path: Any
) -> None:
    from .conftest import make_settings

    want = _keys(_retriever(small_engine, "hnsw").search(QUESTIONS[0], k=8))
    small_engine.store.warm_vector_index()  # what the app does while its model loads
    assert _keys(_retriever(small_engine, "hnsw").search(QUESTIONS[0], k=8)) == want
    empty = ChunkStore(make_settings(tmp_path / "empty"))
    empty.warm_vector_index()  # nothing to load: no error
    assert empty.count() == 0
