"""A keyword index that loads in seconds at a million chunks: ids and metadata from columns saved
beside each segment's records (no line of the records file parsed, no dict per chunk held), the
postings memory-mapped; and a corpus view made from those columns, its rows found through the
index's own id map."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from assistant.corpus_view import CorpusView
from assistant.retrieve import Retriever
from index.keyword import ChunkRecord, KeywordIndex
from index.segment_columns import SegmentColumns, columns_path

if TYPE_CHECKING:
    from assistant.engine import Engine


def _meta(n: int, version: str = "v1") -> dict[str, Any]:
    meta: dict[str, Any] = {
        "article_id": f"a{n // 3}",
        "article_hash": version,
        "title": f"Report {n // 3}",
        "source": "The Outlet" if n % 2 else "Other Daily",
        "date_int": 20220100 + 1 + n // 3,
        "chunk": n % 3,
        "start": 100 * (n % 3),
        "score": 0.5 * n,
        "flag": n % 3 == 1,
        "none": None,
    }
    if n % 5 == 0:
        meta["extra"] = f"only some chunks {n}"  # a key not every chunk has
    if n == 7:
        meta["title"] = "A chunk with a title of its own"  # not the same on every chunk
    return meta


def _record(n: int, version: str = "v1") -> ChunkRecord:
    return ChunkRecord(f"a{n // 3}-{n % 3}", f"chunk {n} text ({version})", _meta(n, version))


def _typed(meta: dict[str, Any]) -> list[tuple[str, type, Any]]:
    return [(k, type(v), v) for k, v in meta.items()]


def test_columns_give_back_each_chunks_metadata_exactly() -> None:
    metas = [_meta(n) for n in range(20)]
    columns = SegmentColumns.of([f"c{n}" for n in range(20)], metas)
    for row, meta in enumerate(metas):
        # The same keys in the same order, values of the same types (ints stay Python ints).
        assert _typed(columns.metadata(row)) == _typed(meta)
    assert columns.column("extra") == [m.get("extra") for m in metas]
    assert columns.column("title") == [m["title"] for m in metas]
    assert columns.column("missing") == [None] * 20
    assert len(columns.articles) == 7  # the article-level values are held once per article
    assert "title" not in columns.articles[0] and "source" in columns.own


def test_a_saved_index_loads_from_its_columns_with_postings_mapped(tmp_path: Path) -> None:
    records = [_record(n) for n in range(30)]
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild(records, generation="g0")
    for step in range(3):  # deltas, saved with columns of their own
        index.apply([_record(step, f"v{step + 2}"), _record(100 + step)], [], f"g{step + 1}")
    folder = tmp_path / "kw"
    assert columns_path(folder / "records.jsonl").exists()
    kinds = sorted(p.name.split(".", 1)[1] for p in (tmp_path / "kw.deltas").iterdir())
    assert kinds == ["columns.pkl"] * 3 + ["jsonl"] * 3 + ["npz"] * 3

    loaded = KeywordIndex(folder)
    loaded.follow(loaded.read_manifest() or {})
    assert loaded.fingerprint == index.fingerprint
    assert [(r.id, r.text, r.metadata) for r in loaded.records] == [
        (r.id, r.text, r.metadata) for r in index.records
    ]
    main = loaded.snapshot().segments[0]
    assert isinstance(main.rows, np.memmap) and isinstance(main.tfs, np.memmap)
    for query in ("report", "chunk text v3", "title of its own"):
        got, want = loaded.top_scores(query), index.top_scores(query)
        assert np.array_equal(got[0], want[0]) and np.allclose(got[1], want[1])
    assert loaded.snapshot().column("date_int") == [r.metadata["date_int"] for r in index.records]


def test_a_folder_saved_before_columns_loads_and_gains_them(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(12)], generation="g0")
    sidecar = columns_path(tmp_path / "kw" / "records.jsonl")
    sidecar.unlink()
    loaded = KeywordIndex(tmp_path / "kw")
    assert loaded.load_persisted(index.fingerprint)
    assert [r.metadata for r in loaded.records] == [r.metadata for r in index.records]
    assert sidecar.exists()  # written for the next process


def test_columns_of_another_records_file_are_not_used(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(12)], generation="g0")
    records = tmp_path / "kw" / "records.jsonl"
    lines = records.read_bytes().splitlines(keepends=True)
    first = json.loads(lines[0])
    first[2]["title"] = "Changed on disk, same length?"
    lines[0] = (json.dumps(first, ensure_ascii=False) + "\n").encode()
    records.write_bytes(b"".join(lines))  # another size: the saved columns no longer fit
    loaded = KeywordIndex(tmp_path / "kw")
    loaded.follow(loaded.read_manifest() or {})
    assert loaded.records[0].metadata["title"] == "Changed on disk, same length?"


def test_a_cut_short_columns_file_is_read_around(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(12)], generation="g0")
    sidecar = columns_path(tmp_path / "kw" / "records.jsonl")
    sidecar.write_bytes(sidecar.read_bytes()[:50])
    loaded = KeywordIndex(tmp_path / "kw")
    assert loaded.load_persisted(index.fingerprint)
    assert [r.metadata for r in loaded.records] == [r.metadata for r in index.records]


def test_the_row_finder_follows_deltas_and_merges(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(30)], generation="g0")
    merged = 0
    for step in range(14):  # past the delta limit: merged on the way
        before = index.snapshot()
        index.apply([_record(step, f"v{step + 2}"), _record(200 + step)], [], f"g{step + 1}")
        written = index.snapshot()
        index.settle()
        state = index.snapshot()
        merged += len(state.segments) < len(written.segments)
        assert state.state_id == written.state_id and state.records == written.records
        find = index.row_finder(state)
        assert all(find(r.id) == row for row, r in enumerate(state.records))
        assert find("no such chunk") is None
        # An older state's finder (a view not yet rebuilt) gives its own rows, or none.
        old = index.row_finder(before)
        assert all(old(r.id) in (row, None) for row, r in enumerate(before.records))
        # The state just before a merge (a view made then): every row still found.
        unmerged = index.row_finder(written)
        assert all(unmerged(r.id) == row for row, r in enumerate(written.records))
        assert index.row_finder(before)(_record(200 + step).id) is None
    assert merged


def test_a_view_from_columns_is_the_view_from_records(small_engine: Engine) -> None:
    retriever = Retriever(
        small_engine.settings, store=small_engine.store, embedder=small_engine.embedder
    )
    view = retriever.view()
    plain = CorpusView.build(view.fingerprint, list(view.records), small_engine.store, dense="hnsw")
    for name in ("outlet_of", "day_of", "article_of"):
        assert np.array_equal(getattr(view, name), getattr(plain, name)), name
    assert view.outlets == plain.outlets and view.latest == plain.latest
    for row in (0, len(view.records) // 2, len(view.records) - 1):
        assert view.row_of(view.records[row].id) == row
        assert np.array_equal(view.rows_of(int(view.article_of[row])), plain.rows_of(
            int(plain.article_of[row])
        ))  # fmt: skip
    assert view.rows_of(-1).size == 0 and view.rows_of(10**9).size == 0


@pytest.mark.parametrize("count", [1, 2**15 + 3])
def test_columns_of_many_or_one_chunk_round_trip(tmp_path: Path, count: int) -> None:
    metas = [{"article_id": f"a{n // 7}", "chunk": n % 7, "title": "T"} for n in range(count)]
    columns = SegmentColumns.of([f"c{n}" for n in range(count)], metas)
    columns.offsets = np.arange(count + 1, dtype=np.int64)
    path = tmp_path / "x.columns.pkl"
    columns.save(path, records_size=count)
    loaded = SegmentColumns.load(path, records_size=count, count=count)
    assert loaded is not None
    assert [loaded.metadata(i) for i in (0, count - 1)] == [metas[0], metas[-1]]
    assert SegmentColumns.load(path, records_size=count + 1, count=count) is None


def test_searches_go_on_with_the_old_view_while_a_new_one_is_made(
    small_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    retriever = Retriever(
        small_engine.settings, store=small_engine.store, embedder=small_engine.embedder
    )
    old = retriever.view()
    want = [p.chunk_id for p in retriever.search("What did Lavrov say about NATO?", k=4)]
    started, release = threading.Event(), threading.Event()
    build = CorpusView.build

    def slow_build(*args: Any, **kwargs: Any) -> CorpusView:
        started.set()
        assert release.wait(60)
        return build(*args, **kwargs)

    monkeypatch.setattr(CorpusView, "build", slow_build)
    retriever._state = SimpleNamespace(state_id="another")  # as if the index had moved on
    maker = threading.Thread(target=retriever.view)
    maker.start()
    try:
        assert started.wait(60)
        # Meanwhile: the view before, and the same passages, without waiting for the build.
        assert retriever.view() is old
        got = [p.chunk_id for p in retriever.search("What did Lavrov say about NATO?", k=4)]
        assert got == want and maker.is_alive()
    finally:
        release.set()
        maker.join(60)
    assert retriever.view() is not old and retriever.view().fingerprint == old.fingerprint


def test_the_row_finder_of_a_state_loaded_before_is_not_misled_by_one_loaded_since(
    tmp_path: Path,
) -> None:
    writer = KeywordIndex(tmp_path / "kw")
    writer.rebuild([_record(n) for n in range(2)], generation="g0")
    reader = KeywordIndex(tmp_path / "kw")
    reader.follow(reader.read_manifest() or {})
    before = reader.snapshot()
    writer.rebuild([_record(n) for n in reversed(range(9))], generation="g1")  # elsewhere
    reader.follow(reader.read_manifest() or {})  # loaded whole again: a main segment again
    old, new = reader.row_finder(before), reader.row_finder(reader.snapshot())
    assert all(old(_record(n).id) in (n, None) for n in range(9))
    assert [new(_record(n).id) for n in range(9)] == list(reversed(range(9)))
