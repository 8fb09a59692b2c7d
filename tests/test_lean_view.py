"""No second copy of every chunk's text in memory: the keyword index (and so the corpus view,
which shares its records) keeps ids and metadata, and reads a chunk's text from the saved
segment's file when it is asked for; what a search returns does not change."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from assistant.corpus_view import CorpusView
from assistant.retrieve import Passage, Retriever
from index import keyword_segments
from index.keyword import ChunkRecord, KeywordIndex
from index.keyword_segments import StoredRecord

if TYPE_CHECKING:
    from assistant.engine import Engine

QUESTIONS = [
    "What did Lavrov say about security guarantees and NATO?",
    "Which country did the President discuss with European allies?",
    "What did the White House say about the pandemic and vaccines?",
    "Who did the President meet in February 2022?",
]


def _record(n: int, version: str = "v1") -> ChunkRecord:
    meta = {
        "article_id": f"a{n // 3}",
        "title": f"Report {n // 3}, a long enough title",
        "source": "The Outlet",
        "article_hash": version,
        "start": 100 * (n % 3),
    }
    return ChunkRecord(f"a{n // 3}-{n % 3:04d}", f"chunk {n} ({version}) says “ünïcode” text", meta)


def _holds_text(record: ChunkRecord) -> bool:
    try:
        ChunkRecord.text.__get__(record)  # type: ignore[attr-defined]  # the field's own slot
    except AttributeError:
        return False
    return True


def _texts(index: KeywordIndex) -> dict[str, str]:
    return {r.id: r.text for r in index.records}


def test_a_saved_index_holds_no_texts_and_reads_them_back(tmp_path: Path) -> None:
    records = [_record(n) for n in range(30)]
    want = {r.id: r.text for r in records}
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild(records, generation="g0")
    assert all(isinstance(r, StoredRecord) and not _holds_text(r) for r in index.records)
    assert _texts(index) == want
    loaded = KeywordIndex(tmp_path / "kw")
    assert loaded.load_persisted(index.fingerprint)
    assert all(isinstance(r, StoredRecord) and not _holds_text(r) for r in loaded.records)
    assert _texts(loaded) == want
    assert [r.metadata for r in loaded.records] == [r.metadata for r in records]
    # An article's chunks share its metadata's strings rather than holding a copy each.
    first, second = loaded.records[0].metadata, loaded.records[1].metadata
    assert (
        first["title"] is second["title"]
        and first["source"] is loaded.records[5].metadata["source"]
    )


def test_texts_survive_deltas_merges_and_a_folder_replaced_by_another_process(
    tmp_path: Path,
) -> None:
    index = KeywordIndex(tmp_path / "kw")
    live = {r.id: r for r in (_record(n) for n in range(30))}
    index.rebuild(list(live.values()), generation="g0")
    for step in range(12):  # past MAX_DELTAS: merged, and written whole again
        changed = [_record(step, f"v{step + 2}"), _record(100 + step)]
        index.apply(changed, [], f"g{step + 1}")
        live.update((r.id, r) for r in changed)
    assert _texts(index) == {i: r.text for i, r in live.items()}
    follower = KeywordIndex(tmp_path / "kw")
    follower.follow(follower.read_manifest() or {})
    before = _texts(follower)
    assert before == {i: r.text for i, r in live.items()}
    # Another process rebuilds the folder: the follower's state still reads its own texts.
    other = KeywordIndex(tmp_path / "kw")
    other.rebuild([_record(n, "other") for n in range(5)], generation="x")
    assert _texts(follower) == before


def test_a_stored_record_pickles_and_copies_as_a_plain_one(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild([_record(n) for n in range(4)], generation="g0")
    stored = index.records[2]
    assert stored == _record(2) and _record(2) == stored and stored != _record(3)
    for clone in (pickle.loads(pickle.dumps(stored)), copy.copy(stored), copy.deepcopy(stored)):
        assert type(clone) is ChunkRecord
        assert clone == ChunkRecord(stored.id, _record(2).text, _record(2).metadata)


def _keys(passages: list[Passage]) -> list[tuple[str, int, int, str, float]]:
    return [(p.chunk_id, p.start, p.end, p.text, p.score) for p in passages]


def test_a_search_reads_the_texts_of_its_rows_alone_and_finds_the_same(
    small_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_engine.index.settle()  # no merge of earlier writes swaps the segments meanwhile
    retriever = Retriever(
        small_engine.settings, store=small_engine.store, embedder=small_engine.embedder
    )
    view = retriever.view()
    assert view.records and not any(_holds_text(r) for r in view.records)
    # The same view with every text in memory, as before: the same passages.
    plain = [ChunkRecord(r.id, r.text, r.metadata) for r in view.records]
    held = Retriever(
        small_engine.settings, store=small_engine.store, embedder=small_engine.embedder
    )
    held._view = CorpusView.build(
        view.fingerprint, plain, small_engine.store, dense=small_engine.settings.dense_search
    )
    want = {q: _keys(held.search(q, k=6)) for q in QUESTIONS}

    read: list[int] = []
    one, several = keyword_segments.SegmentTexts.text, keyword_segments.SegmentTexts.texts

    def counted(self: keyword_segments.SegmentTexts, row: int) -> str:
        read.append(row)
        return one(self, row)

    def counted_runs(self: keyword_segments.SegmentTexts, rows: Sequence[int]) -> dict[int, str]:
        read.extend(rows)
        return several(self, rows)

    monkeypatch.setattr(keyword_segments.SegmentTexts, "text", counted)
    monkeypatch.setattr(keyword_segments.SegmentTexts, "texts", counted_runs)
    CorpusView.build(view.fingerprint, view.records, small_engine.store, dense="hnsw")
    assert retriever.view() is view and not read  # the view is made of metadata alone
    for question in QUESTIONS:
        read.clear()
        assert _keys(retriever.search(question, k=6)) == want[question]
        assert read and len(set(read)) < len(view.records) / 2, question


def test_a_text_is_read_back_whatever_the_line_looks_like(tmp_path: Path) -> None:
    lines = [
        ["c0", 'quotes " and \\ back, ünïcode, \u2028 and\nnew lines', {"k": "v"}],
        ['c"1', "", {}],
    ]
    path = tmp_path / "records.jsonl"
    written = [
        json.dumps(lines[0], ensure_ascii=False),
        json.dumps(lines[1], separators=(",", ":")),
    ]
    path.write_text("".join(f"{w}\n" for w in written), encoding="utf-8")
    sizes = [len(f"{w}\n".encode()) for w in written]
    texts = keyword_segments.SegmentTexts(path, np.cumsum([0, *sizes]))
    assert [texts.text(0), texts.text(1)] == [lines[0][1], lines[1][1]]


def test_texts_are_read_a_run_of_lines_at_a_time_and_match_one_by_one(tmp_path: Path) -> None:
    records = [_record(n) for n in range(40)]
    index = KeywordIndex(tmp_path / "kw")
    index.rebuild(records[:30], generation="g0")
    index.apply(records[30:], [], "g1")  # a delta: a second records file
    stored = index.records
    assert len({id(r._texts) for r in stored if isinstance(r, StoredRecord)}) == 2
    held = [ChunkRecord(r.id, r.text, r.metadata) for r in stored]
    mixed = [*stored[:35], *held[35:]]  # stored and plain records side by side
    calls: list[int] = []
    pread = keyword_segments.os.pread

    def counted(fd: int, size: int, offset: int) -> bytes:
        calls.append(size)
        return pread(fd, size, offset)

    for rows in ([5, 6, 7, 8], [12, 3, 4, 31, 30, 39, 36, 3], [29, 30], [0], []):
        calls.clear()
        keyword_segments.os.pread = counted  # type: ignore[assignment]
        try:
            got = keyword_segments.record_texts(mixed, rows)
        finally:
            keyword_segments.os.pread = pread
        assert got == [r.text for r in (held[i] for i in rows)]
        runs = {tuple(rows): n for rows, n in [((5, 6, 7, 8), 1), ((29, 30), 2), ((0,), 1)]}
        if tuple(rows) in runs:
            assert len(calls) == runs[tuple(rows)]  # one read a run, per records file
