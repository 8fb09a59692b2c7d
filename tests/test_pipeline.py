"""Ingest into a real Chroma in a temp dir with the real model: identity, updates, deletes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from assistant.engine import Engine
from index.keyword import fingerprint
from serving.config import AppSettings

from .conftest import REPO, TASS, demo_articles

if TYPE_CHECKING:
    from index.embedding import Embedder


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _assert_in_step(engine: Engine) -> None:
    """The keyword index holds exactly Chroma's chunks, of the same article versions."""
    store = engine.store
    store.sync_keyword_index(force=True)
    ids, metas = store.iter_metadata()
    assert store.keyword.fingerprint == fingerprint(ids, metas)
    assert sorted(r.id for r in store.keyword.records) == sorted(ids)


def test_reingest_is_idempotent_and_update_replaces_chunks(
    settings: AppSettings, embedder: Embedder, tmp_path: Path
) -> None:
    rows = demo_articles(3)
    feed = _write_jsonl(tmp_path / "feed.jsonl", rows)
    engine = Engine(settings, embedder=embedder)

    first = engine.index.ingest([feed], progress=False)
    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
    chunks = engine.store.count()
    assert chunks == first.chunks_written > 3

    again = engine.index.ingest([feed], progress=False)
    assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, 3, 0)
    assert engine.store.count() == chunks

    rows[1] = {**rows[1], "body": "A much shorter replacement body about wheat prices in Kansas."}
    _write_jsonl(feed, rows)
    changed = engine.index.ingest([feed], progress=False)
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 2)
    hits = engine.search("wheat prices in Kansas", k=3)
    assert hits[0].text.startswith("A much shorter replacement body")
    old_words = " ".join(rows[1]["title"].split()[:3])
    assert all("replacement" in h.text or h.title != rows[1]["title"] for h in hits), old_words
    states = engine.store.article_states([hits[0].article_id])
    assert states[hits[0].article_id].found_chunks == 1
    _assert_in_step(engine)


def test_duplicates_are_skipped_and_counted(
    settings: AppSettings, embedder: Embedder, tmp_path: Path
) -> None:
    rows = demo_articles(2)
    copy = {**rows[0], "url": "https://mirror.example/copy", "id": "other"}
    feed = _write_jsonl(tmp_path / "feed.jsonl", [rows[0], rows[1], rows[0], copy])
    engine = Engine(settings, embedder=embedder)
    report = engine.index.ingest([feed], progress=False)
    assert report.added == 2
    assert report.duplicates == 2

    # the same body under another URL in a later run is also a duplicate of the stored one
    later = _write_jsonl(tmp_path / "later.jsonl", [{**copy, "url": "https://x.example/3"}])
    report = engine.index.ingest([later], progress=False)
    assert (report.added, report.duplicates) == (0, 1)


def test_delete_removes_chunks_from_both_indexes(
    settings: AppSettings, embedder: Embedder, tmp_path: Path
) -> None:
    engine = Engine(settings, embedder=embedder)
    engine.index.ingest([TASS], progress=False)
    feed = _write_jsonl(tmp_path / "feed.jsonl", demo_articles(2))
    engine.index.ingest([feed], progress=False)
    hit = engine.search("verbal pledges not to expand NATO", k=1)[0]
    assert hit.source == "TASS"

    removed = engine.index.delete([hit.article_id])
    assert removed >= 3
    assert all(p.source != "TASS" for p in engine.search("Lavrov NATO pledges", k=10))
    assert not engine.store.keyword.scores("Lavrov").any()
    _assert_in_step(engine)


def test_keyword_index_is_rebuilt_from_chroma_when_missing_or_stale(
    settings: AppSettings, embedder: Embedder
) -> None:
    engine = Engine(settings, embedder=embedder)
    engine.index.ingest([TASS], progress=False)
    engine.index.settle()  # as the CLI exits: no merge swaps the folder under the test
    keyword_dir = engine.store.keyword.directory
    assert (keyword_dir / "state.json").exists()

    # a new process (a new engine) loads the persisted index without rebuilding
    fresh = Engine(settings, embedder=embedder)
    assert fresh.store.sync_keyword_index(force=True)
    assert len(fresh.store.keyword) == engine.store.count()

    # a corrupted derived index is rebuilt from Chroma, the truth
    (keyword_dir / "records.jsonl").write_text("not json\n")
    third = Engine(settings, embedder=embedder)
    third.store.sync_keyword_index(force=True)
    assert len(third.store.keyword) == engine.store.count()
    assert third.search("verbal pledges NATO", k=1)[0].source == "TASS"


def test_search_ranks_the_tass_passage_for_the_lavrov_question(small_engine: Engine) -> None:
    passages = small_engine.search("What did Lavrov say about NATO expansion?", k=3)
    assert any("verbal pledges in the 1990s not to expand NATO" in p.text for p in passages)
    top = passages[0]
    assert top.source == "TASS" and top.published == "2022-01-28"
    assert top.title.startswith("Russia does not see its security guarantee proposals")


def test_every_chunk_carries_metadata_and_offsets(small_engine: Engine, small_corpus: Path) -> None:
    from index.articles import Article
    from index.loaders import load_paths

    records = small_engine.store.all_records()
    (tass,) = [a for a in load_paths([TASS]) if isinstance(a, Article)]
    tass_text = tass.body
    for record in records:
        meta = record.metadata
        assert meta["title"] and meta["article_id"] and meta["article_hash"]
        assert meta["end"] > meta["start"] >= 0
        assert meta["date_int"] == int(meta["published"].replace("-", ""))
        if meta["source"] == "TASS":
            assert tass_text[meta["start"] : meta["end"]] == record.text


def test_filters_restrict_dense_and_keyword_results(small_engine: Engine) -> None:
    from assistant.retrieve import Filters

    only_tass = small_engine.search("security guarantees", k=5, filters=Filters(outlets=("TASS",)))
    assert only_tass and all(p.source == "TASS" for p in only_tass)
    january = small_engine.search(
        "Russia Ukraine", k=8, filters=Filters(date_from="2022-02-01", date_to="2022-02-28")
    )
    assert january and all("2022-02-01" <= p.published <= "2022-02-28" for p in january)


def _cli(*args: str, storage: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWS_ASSISTANT_STORAGE_DIR": str(storage)}
    return subprocess.run(
        [sys.executable, "-m", "serving.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cli_ingest_is_idempotent_across_processes_and_reports_bad_records(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    feed = tmp_path / "feed.jsonl"
    good = demo_articles(2)
    feed.write_text(
        json.dumps(good[0])
        + "\n{broken json\n"
        + json.dumps({"title": "No body"})
        + "\n"
        + json.dumps(good[1])
        + "\n"
    )
    first = _cli("ingest", "--json", "-q", str(feed), storage=storage)
    assert first.returncode == 3, first.stderr
    report = json.loads(first.stdout)
    assert report["added"] == 2 and report["skipped"] == 2
    assert any("feed.jsonl:2" in issue for issue in report["issues"])
    assert any("feed.jsonl:3" in issue and "'body'" in issue for issue in report["issues"])

    second = _cli("ingest", "--json", "-q", str(feed), storage=storage)
    report = json.loads(second.stdout)
    assert (report["added"], report["unchanged"], report["chunks_written"]) == (0, 2, 0)

    stats = json.loads(_cli("stats", "--json", storage=storage).stdout)
    assert stats["articles"] == 2 and stats["chunks"] == stats["keyword_index_chunks"] > 2

    found = json.loads(
        _cli("search", good[1]["title"], "-k", "2", "--json", storage=storage).stdout
    )
    assert found[0]["title"] == good[1]["title"]


def test_readers_look_again_only_when_the_generation_changes(
    settings: AppSettings, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Engine(settings, embedder=embedder)
    feed = _write_jsonl(tmp_path / "feed.jsonl", demo_articles(2))
    writer.index.ingest([feed, TASS], progress=False)
    reader = Engine(settings, embedder=embedder).store
    reader.sync_keyword_index()
    assert len(reader.keyword) == writer.store.count()

    fingerprints: list[str] = []
    real = reader.chroma_fingerprint

    def counted() -> str:
        fingerprints.append(real())
        return fingerprints[-1]

    monkeypatch.setattr(reader, "chroma_fingerprint", counted)
    assert reader.sync_keyword_index() is False
    assert fingerprints == []  # nothing written: no full read of Chroma's metadata

    tass_id = writer.search("verbal pledges NATO", k=1)[0].article_id
    writer.index.delete([tass_id])
    assert reader.sync_keyword_index() is True
    # The writer saved what it changed as a delta named with the new generation: the reader
    # reads that delta, not Chroma's metadata.
    assert fingerprints == []
    assert len(reader.keyword) == writer.store.count()
    assert all(r.metadata["article_id"] != tass_id for r in reader.keyword.records)
