"""Chunk vectors saved with the keyword index's segments: written by the writer's deltas,
carried through merges and saves, added from Chroma to a segment that has none, ignored when
a file is not whole, and read by the HNSW search instead of asking Chroma, with Chroma's
values exactly. A real embedded Chroma and the real model where a store is involved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from assistant.retrieve import Retriever
from index.check import check_store, repair_store
from index.keyword import KeywordIndex
from index.keyword_segments import RECORDS, merge
from index.segment_vectors import SUFFIX, SavedVectors
from index.store import ChunkStore

from .conftest import demo_articles, engine_over
from .test_keyword_segments import _record

if TYPE_CHECKING:
    from assistant.engine import Engine
    from index.embedding import Embedder


def _vector(chunk_id: str, version: str = "v1") -> np.ndarray:
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(chunk_id + version))
    vector = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _fetch(ids: list[str]) -> dict[str, np.ndarray]:
    return {i: _vector(i) for i in ids}


def _assert_vectors(index: KeywordIndex, expected: dict[str, np.ndarray]) -> None:
    state = index.snapshot()
    rows = list(range(len(state.records)))
    found = state.vectors(rows)
    assert sorted(found) == rows  # every live row has its vector
    for row in rows[::-1]:  # asked in any order
        np.testing.assert_array_equal(found[row], expected[state.records[row].id])


def test_vectors_are_added_to_a_rebuild_and_carried_by_deltas_merges_and_loads(
    tmp_path: Path,
) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(40)], generation="g0")
    assert index.snapshot().vectors([0, 1]) == {}  # a rebuild reads no vectors
    assert index.add_vectors(_fetch) == 40
    assert (tmp_path / "kw" / f"records{SUFFIX}").exists()
    expected = {r.id: _vector(r.id) for r in index.records}

    changed = [_record(n, "v2") for n in (3, 41)]
    vectors = np.stack([_vector(r.id, "v2") for r in changed])
    index.apply(changed, ["a7-0000"], "g1", vectors)
    expected.update({r.id: _vector(r.id, "v2") for r in changed})
    del expected["a7-0000"]
    _assert_vectors(index, expected)

    again = KeywordIndex(tmp_path / "kw")  # another process: main and delta from disk
    again.load_persisted(index.fingerprint)
    assert again.segment_count == 2
    _assert_vectors(again, expected)

    state = again.snapshot()
    merged = merge(state.segments, state.alive)  # the superseded and deleted rows left out
    saved = merged.save(tmp_path / "m.npz", tmp_path / "m.jsonl", header=False)
    assert isinstance(saved.vectors, SavedVectors) and len(saved.vectors) == len(expected)
    for i, record in enumerate(saved.records):
        np.testing.assert_array_equal(saved.vectors.take([i])[0], expected[record.id])


def test_a_segment_without_vectors_leaves_its_rows_to_chroma_and_its_merges_too(
    tmp_path: Path,
) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(10)], generation="g0")
    index.add_vectors(_fetch)
    index.apply([_record(20)], [], "g1")  # a writer that knew no vectors
    state = index.snapshot()
    assert sorted(state.vectors(range(11))) == list(range(10))
    assert merge(state.segments, state.alive).vectors is None
    index.apply([], ["a20-0000"], "g2")  # its only row deleted: no longer needed
    state = index.snapshot()
    assert merge(state.segments, state.alive).vectors is not None


@pytest.mark.parametrize("damage", ["cut short", "another segment's", "missing"])
def test_a_vectors_file_that_is_not_whole_is_ignored(tmp_path: Path, damage: str) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(12)], generation="g0")
    index.add_vectors(_fetch)
    path = tmp_path / "kw" / f"records{SUFFIX}"
    if damage == "cut short":
        path.write_bytes(path.read_bytes()[:-3])
    elif damage == "another segment's":
        np.save(path, np.zeros((11, 8), dtype=np.float32))
    else:
        path.unlink()
    again = KeywordIndex(tmp_path / "kw")
    assert again.load_persisted(index.fingerprint)  # the index itself still loads
    assert again.snapshot().vectors([0, 5]) == {}
    assert again.add_vectors(_fetch) == 12  # and gets them again
    _assert_vectors(again, {r.id: _vector(r.id) for r in again.records})


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Engine:
    """A store written through the pipeline (three demo articles, embedded here)."""
    folder = tmp_path_factory.mktemp("vectors")
    return engine_over(folder, demo_articles(3), embedder)


def _counting(store: ChunkStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked: list[int] = []
    embeddings = store.embeddings

    def counted(chunk_ids: Any) -> dict[str, np.ndarray]:
        asked.append(len(chunk_ids))
        return embeddings(chunk_ids)

    monkeypatch.setattr(store, "embeddings", counted)
    return asked


def _hnsw_view(engine: Engine, store: ChunkStore) -> Any:
    settings = engine.settings.with_changes(dense_search="hnsw")
    return Retriever(settings, store=store, embedder=engine.embedder).view()


def test_a_written_store_serves_chromas_vectors_from_its_segments(
    written: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ChunkStore(written.settings)
    asked = _counting(store, monkeypatch)
    view = _hnsw_view(written, store)
    rows = list(range(len(view.records)))
    found = view.fetch_vectors(rows)
    assert not asked  # nothing asked of Chroma
    chroma = ChunkStore(written.settings).embeddings([r.id for r in view.records])
    assert sorted(found) == rows
    for row in rows:
        np.testing.assert_array_equal(found[row], chroma[view.records[row].id])


def test_a_metadata_update_takes_its_vectors_from_chroma(written: Engine) -> None:
    store = written.store
    article = str(store.keyword.records[0].metadata["article_id"])
    assert store.set_article_fields(article, {"section": "world"}) > 0
    state = store.keyword.snapshot()
    assert state.segments[-1].vectors is not None  # the update's delta
    chroma = store.embeddings([r.id for r in state.records])
    found = state.vectors(range(len(state.records)))
    for row, record in enumerate(state.records):
        np.testing.assert_array_equal(found[row], chroma[record.id])


def test_check_warns_of_segments_without_vectors_and_repair_saves_them(
    written: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    written.store.keyword.settle()  # the update's merge, if any, done: the folder stays put
    folder = written.settings.keyword_dir
    for path in folder.rglob(f"*{SUFFIX}"):
        path.unlink()
    store = ChunkStore(written.settings)
    report = check_store(store, vectors=False)
    assert report.ok  # a warning, not an error
    (warning,) = [p for p in report.problems if p.kind == "keyword index"]
    assert not warning.error and "vectors" in warning.detail

    asked = _counting(store, monkeypatch)
    view = _hnsw_view(written, store)
    assert len(view.fetch_vectors([0, 1])) == 2 and asked == [2]  # from Chroma meanwhile

    repaired = repair_store(ChunkStore(written.settings))
    assert repaired.vectors_saved == len(store.keyword) and not repaired.keyword_rebuilt
    assert not [p for p in repaired.after.problems if p.kind == "keyword index"]
    assert list(folder.rglob(f"*{SUFFIX}"))


def test_the_segments_files_are_read_into_the_page_cache_ahead_within_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(5)], generation="g0")
    index.add_vectors(_fetch)
    index.apply([_record(9)], [], "g1", np.stack([_vector("a9-0000")]))
    read: list[tuple[str, int]] = []
    preadv = os.preadv

    def counted(fd: int, buffers: list[bytearray], offset: int) -> int:
        got = preadv(fd, buffers, offset)
        if got:
            read.append((Path(os.readlink(f"/proc/self/fd/{fd}")).name, got))
        return got

    index.settle()  # no merge under way: the folder stays as the app loads it
    monkeypatch.setattr(os, "preadv", counted)
    app = KeywordIndex(tmp_path / "kw")  # as an app loads it: the postings mapped, not read
    assert app.load_persisted(index.fingerprint)
    state = app.snapshot()
    names = [_name(f) for segment in state.segments for _, f in segment.files()]
    sizes = {name: os.stat(next(tmp_path.rglob(name))).st_size for name in names}
    assert len(sizes) == 3 * len(state.segments)  # each one's vectors, postings and records
    assert state.read_ahead(available=1 << 30, upto=RECORDS) == sum(sizes.values())
    assert dict(read) == sizes  # each read whole, once: the vectors first, the records last
    kinds = [Path(name).suffix for name, _ in read]
    assert kinds == sorted(kinds, key=[".npy", ".npz", ".jsonl"].index)

    read.clear()
    vectors = sum(n for name, n in sizes.items() if name.endswith(SUFFIX))
    assert state.read_ahead(available=2 * vectors, upto=RECORDS) == vectors  # half the memory
    assert {name for name, _ in read} == {n for n in sizes if n.endswith(SUFFIX)}
    read.clear()
    assert state.read_ahead(available=1 << 30) == vectors  # by default, the vectors alone
    assert {name for name, _ in read} == {n for n in sizes if n.endswith(SUFFIX)}


def _name(file: int | str) -> str:
    return Path(os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else file).name
