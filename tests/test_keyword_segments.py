"""The incremental keyword index: deltas and tombstones score as one index over the live chunks,
other processes follow by the new deltas alone, saves are atomic, nothing waits on upkeep."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytest

from index import keyword_segments
from index.keyword import MAX_DELTAS, ChunkRecord, KeywordIndex, fingerprint
from index.keyword_text import keyword_text, keyword_tokens
from index.store import ChunkStore

from .conftest import make_settings

TOPICS = [
    "wheat prices in Kansas fell as the harvest came in early",
    "the Tallinn tram line will open in May, the transport office said",
    "Bitcoin rose above forty thousand dollars after the ETF approval",
    "the harbour in Quito moved more crates this week than last",
    "Lavrov said NATO broke verbal pledges not to expand eastward",
    "a storm closed schools across the county on Tuesday",
]
QUERIES = ["wheat harvest Kansas", "NATO pledges Lavrov", "tram Tallinn May", "crates harbour"]


def _record(n: int, version: str = "v1") -> ChunkRecord:
    text = f"{TOPICS[n % len(TOPICS)]} ({version}, report {n}, item {n * 7 % 13})"
    meta = {"article_id": f"a{n}", "article_hash": version, "title": f"Report {n}", "source": "X"}
    return ChunkRecord(f"a{n}-0000", text, meta)


def _reference(records: list[ChunkRecord], query: str) -> dict[str, float]:
    """bm25s over exactly these chunks: what one index rebuilt from scratch would score."""
    model = bm25s.BM25()
    model.index([keyword_tokens(keyword_text(r)) for r in records], show_progress=False)
    tokens = [t for t in keyword_tokens(query) if t in model.vocab_dict]
    scores = model.get_scores(tokens) if tokens else np.zeros(len(records))
    return {r.id: float(s) for r, s in zip(records, scores, strict=True) if s > 0}


def _scored(index: KeywordIndex, query: str) -> dict[str, float]:
    rows, scores = index.top_scores(query)
    return {index.records[int(r)].id: float(s) for r, s in zip(rows, scores, strict=True)}


def _assert_like_one_index(index: KeywordIndex, live: dict[str, ChunkRecord]) -> None:
    assert sorted(r.id for r in index.records) == sorted(live)
    ids = list(live)
    assert index.fingerprint == fingerprint(ids, [live[i].metadata for i in ids])
    for query in QUERIES:
        want, got = _reference(index.records, query), _scored(index, query)
        assert want.keys() == got.keys(), query
        for chunk_id, score in want.items():
            assert got[chunk_id] == pytest.approx(score, rel=1e-5), (query, chunk_id)


def _changed(tmp_path: Path) -> tuple[KeywordIndex, dict[str, ChunkRecord]]:
    """An index of 60 chunks, then deltas: new chunks, a new version of some, deletes."""
    index = KeywordIndex(tmp_path / "kw")
    live = {r.id: r for r in (_record(n) for n in range(60))}
    index.rebuild(list(live.values()), generation="g0")
    updates = [_record(n, "v2") for n in (3, 4)] + [_record(60)]
    index.apply(updates, ["a7-0000", "a8-0000"], "g1")
    live.update((r.id, r) for r in updates)
    del live["a7-0000"], live["a8-0000"]
    index.apply([_record(61)], ["a9-0000"], "g2")
    live[_record(61).id] = _record(61)
    del live["a9-0000"]
    return index, live


def test_deltas_and_tombstones_score_like_one_index_over_the_live_chunks(tmp_path: Path) -> None:
    index, live = _changed(tmp_path)
    assert index.segment_count == 3  # the main segment and two deltas, not merged
    _assert_like_one_index(index, live)
    assert index.chunks_with("lavrov").size == sum("Lavrov" in r.text for r in live.values())
    rows, scores = index.top_scores("wheat")
    assert np.array_equal(np.flatnonzero(index.scores("wheat")), rows)
    assert np.array_equal(index.scores("wheat")[rows], scores)


def test_a_reader_follows_by_the_new_deltas_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = KeywordIndex(tmp_path / "kw")
    writer.rebuild([_record(n) for n in range(60)], generation="g0")
    reader = KeywordIndex(tmp_path / "kw")
    assert reader.follow(reader.read_manifest() or {})
    loaded: list[str] = []
    real = keyword_segments.Segment.load.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        loaded.append(name)
        return real(cls, name, *args, **kwargs)

    monkeypatch.setattr(keyword_segments.Segment, "load", classmethod(counted))
    writer.apply([_record(60), _record(5, "v2")], ["a6-0000"], "g1")
    writer.apply([_record(61)], [], "g2")
    manifest = reader.read_manifest()
    assert manifest is not None and manifest["chroma_generation"] == "g2"
    assert reader.follow(manifest)
    assert len(loaded) == 2 and "main" not in loaded  # two small deltas, not the archive
    assert reader.fingerprint == writer.fingerprint and reader.generation == "g2"
    assert not reader.follow(manifest)  # nothing new: nothing read
    assert len(loaded) == 2


def test_deltas_merge_on_the_threshold_and_a_new_process_loads_the_whole(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw")
    live = {r.id: r for r in (_record(n) for n in range(200))}
    index.rebuild(list(live.values()))
    for n in range(200, 200 + 3 * MAX_DELTAS):
        index.apply([_record(n)], [f"a{n - 200}-0000"], f"g{n}")
        live[_record(n).id] = _record(n)
        del live[f"a{n - 200}-0000"]
        assert index.segment_count <= MAX_DELTAS + 1
    _assert_like_one_index(index, live)
    fresh = KeywordIndex(tmp_path / "kw")
    assert fresh.load_persisted(index.fingerprint)
    _assert_like_one_index(fresh, live)
    assert fresh.check_persisted(index.fingerprint) is None


def test_a_save_that_dies_before_the_manifest_leaves_the_previous_state_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, live = _changed(tmp_path)
    before = index.fingerprint
    real_rename = Path.rename

    def dies(self: Path, target: Any) -> Any:
        if self.name.endswith(".tmp"):
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "rename", dies)
        index.apply([_record(70)], [], "g3")  # the delta is written, the manifest is not
    assert len(index) == len(live) + 1  # this process goes on with it
    saved = json.loads((tmp_path / "kw" / "state.json").read_text())
    assert saved["fingerprint"] == before and saved["chroma_generation"] == "g2"
    other = KeywordIndex(tmp_path / "kw")
    assert other.load_persisted(before) and other.check_persisted(before) is None
    _assert_like_one_index(other, live)
    # The next save of this process finds the disk behind it and writes the whole state.
    index.apply([_record(71)], [], "g4")
    assert KeywordIndex(tmp_path / "kw").load_persisted(index.fingerprint)


def test_searches_do_not_wait_for_keyword_upkeep(tmp_path: Path) -> None:
    store = ChunkStore(make_settings(tmp_path / "storage"))
    store.sync_keyword_index(force=True)  # the first state: an empty archive
    store._seen_generation = "another"  # as if a writer had written since
    started = threading.Event()
    release = threading.Event()
    real = store.chroma_fingerprint

    def slow_check() -> str:  # a full check of Chroma: the slowest upkeep there is
        started.set()
        release.wait(30)
        return real()

    store.chroma_fingerprint = slow_check  # type: ignore[method-assign]
    upkeep = threading.Thread(target=store.sync_keyword_index)
    upkeep.start()
    try:
        assert started.wait(30)
        began = time.monotonic()
        assert store.sync_keyword_index() is False  # another thread is at it: go on
        assert time.monotonic() - began < 2
    finally:
        release.set()
        upkeep.join(30)


def test_remembered_terms_give_the_words_own_terms_even_when_the_memory_fills(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import Stemmer

    from index import keyword_text as kt

    stemmer = Stemmer.Stemmer("english")

    def uncached(text: str) -> list[str]:
        words = (
            w.replace(".", "").replace("’", "'").removesuffix("'s") for w in kt._WORD.findall(text)
        )
        return stemmer.stemWords([w for w in map(str.lower, words) if w and w not in kt.STOPWORDS])

    texts = [
        *TOPICS,
        "İstanbul's U.S. envoys, e.g. the ÉLYSÉE’s; STRASSE 3.5 -.5 a.-b ... 's The THE it’s",
        "".join(chr(c) for c in range(0x20, 0x2100)),
    ]
    monkeypatch.setattr(kt, "_TERMS_KEPT", 7)  # the memory fills and starts again, often
    for _ in range(2):  # then again, from what was remembered
        for text in texts:
            assert keyword_tokens(text) == uncached(text)
    assert 0 < len(kt._TERMS) <= 7
