"""Crash safety: ingest killed at random points, half-written states, and `check --repair`."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from index.articles import Article
from index.check import check_store, repair_store
from index.loaders import load_paths
from index.pipeline import IngestReport, chunk_article, chunk_id, embedding_text, ingest
from index.store import ChunkStore
from serving.config import AppSettings

from .conftest import REPO, make_settings

if TYPE_CHECKING:
    from index.embedding import Embedder

SEED = 20260407
CITIES = ("Lisbon", "Tallinn", "Nairobi", "Osaka", "Quito", "Tromso", "Adelaide", "Leipzig")
THINGS = ("tram fares", "rents", "river levels", "school places", "bus routes", "harbour fees")
# Short chunks keep the embedding work of the many re-runs small; small model batches make
# ingest write every 64 chunks, so that there are many moments to kill it at.
SMALL_CHUNKS = {"chunk_tokens": 64, "chunk_overlap": 16, "embed_batch_size": 8}


def _sentence(article: int, n: int, version: int) -> str:
    rng = random.Random(article * 1000 + n * 10 + version)
    return (
        f"Report {article} part {n} version {version}: in {rng.choice(CITIES)} "
        f"{rng.choice(THINGS)} changed by {rng.randint(2, 90)} percent this week."
    )


def _article(number: int, sentences: int, version: int = 1) -> dict[str, Any]:
    return {
        "id": f"crash-{number:04d}",
        "title": f"Weekly report {number} v{version}",
        "date": "2022-02-01",
        "body": " ".join(_sentence(number, n, version) for n in range(sentences)),
    }


def _write_feed(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _settings(storage: Path) -> AppSettings:
    return make_settings(storage, **SMALL_CHUNKS)


def _stored_articles(feed: Path) -> list[Article]:
    return [a for a in load_paths([feed]) if isinstance(a, Article)]


# Random SIGKILLs of the real CLI.


def _env(storage: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NEWS_ASSISTANT_CONFIG": str(storage.parent / "no-config.toml"),
        "NEWS_ASSISTANT_STORAGE_DIR": str(storage),
        "NEWS_ASSISTANT_CHUNK_TOKENS": str(SMALL_CHUNKS["chunk_tokens"]),
        "NEWS_ASSISTANT_CHUNK_OVERLAP": str(SMALL_CHUNKS["chunk_overlap"]),
        "NEWS_ASSISTANT_EMBED_BATCH_SIZE": str(SMALL_CHUNKS["embed_batch_size"]),
    }


def _cli(storage: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "serving.cli", *args],
        cwd=REPO,
        env=_env(storage),
        capture_output=True,
        text=True,
        timeout=300,
    )


_PROGRESS = re.compile(r"(\d+)/(\d+)")


def _ingest_and_kill(
    feed: Path, storage: Path, *, at: float | None, rng: random.Random
) -> tuple[str, int | None]:
    """Run `ingest FEED`; kill it once its progress bar reaches the fraction `at` (0: while it
    starts up), a random moment later. Returns where it was killed, and its exit code if not."""
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.cli", "ingest", str(feed)],
        cwd=REPO,
        env=_env(storage),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    fd = process.stderr.fileno()
    seen: list[str] = []
    # os.read returns what tqdm has written so far; a buffered read would wait for more.
    reader = threading.Thread(
        target=lambda: seen.extend(
            b.decode(errors="replace") for b in iter(lambda: os.read(fd, 4096), b"")
        )
    )
    reader.start()
    deadline = time.monotonic() + 240
    progress = (0, 1)
    if at == 0:
        time.sleep(rng.uniform(0.5, 3.0))
    while at and process.poll() is None and time.monotonic() < deadline:
        found = _PROGRESS.findall("".join(seen[-20:]))
        if found:
            progress = (int(found[-1][0]), int(found[-1][1]))
            if progress[0] >= at * progress[1]:
                break
        time.sleep(0.02)
    if at is not None:
        time.sleep(rng.uniform(0.0, 0.4))
    where = f"{progress[0]}/{progress[1]} articles"
    if at is not None and process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        reader.join(timeout=30)
        return f"killed at {where}", None
    code = process.wait(timeout=240)
    reader.join(timeout=30)
    assert code in (0, 3), "".join(seen)[-3000:]
    return f"finished ({where})", code


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ingest_killed_at_random_points_leaves_no_duplicate_or_orphan_chunks(
    tmp_path: Path, embedder: Embedder
) -> None:
    rng = random.Random(SEED)
    storage = tmp_path / "storage"
    first = [_article(n, 2 + n % 4) for n in range(160)]
    feed_v1 = _write_feed(tmp_path / "v1.jsonl", first)
    # v2: some articles grow, some shrink (their old chunks beyond the new count must go),
    # and some are new.
    second = list(first)
    for n in range(0, 160, 3):
        second[n] = _article(n, 1 if n % 2 else 6, version=2)
    second += [_article(n, 3) for n in range(160, 190)]
    feed_v2 = _write_feed(tmp_path / "v2.jsonl", second)

    log = []
    for at in (0.0, 0.5):
        log.append(_ingest_and_kill(feed_v1, storage, at=at, rng=rng)[0])
    repaired = _cli(storage, "check", "--repair", "--json")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    found = json.loads(repaired.stdout)
    assert found.get("repair", {"after": {"ok": True}})["after"]["ok"]
    log.append(f"check --repair: {len(found['errors'])} error(s) found, repaired")
    for at in (0.5, 1.0):
        log.append(_ingest_and_kill(feed_v2, storage, at=at, rng=rng)[0])
    last, code = _ingest_and_kill(feed_v2, storage, at=None, rng=rng)
    log.append(last)
    assert code == 0
    final = _cli(storage, "check", "--json")
    assert final.returncode == 0, final.stdout + final.stderr
    assert json.loads(final.stdout)["ok"]
    print("\n" + "\n".join(log))

    # The store holds exactly the chunks of v2, each of its article's latest version.
    settings = _settings(storage)
    store = ChunkStore(settings)
    articles = _stored_articles(feed_v2)
    want: dict[str, tuple[Article, str]] = {}
    for article in articles:
        for chunk in chunk_article(article, embedder=embedder, settings=settings):
            want[chunk_id(article, chunk)] = (article, embedding_text(article, chunk))
    ids, metas = store.iter_metadata()
    assert len(ids) == len(set(ids))
    assert set(ids) == set(want)
    for cid, meta in zip(ids, metas, strict=True):
        assert meta["article_hash"] == want[cid][0].content_hash, cid
    report = check_store(store)
    assert report.ok and report.keyword_fingerprint == report.chroma_fingerprint
    store.sync_keyword_index(force=True)
    assert sorted(r.id for r in store.keyword.records) == sorted(ids)
    # The vectors are those of the latest texts: each changed chunk finds itself first.
    changed = [cid for cid, (article, _) in want.items() if " v2" in article.title][:5]
    for cid in changed:
        hit = store.dense_search(embedder.embed_query(want[cid][1]), k=1)[0]
        assert hit.record.id == cid and hit.similarity > 0.99


# Half-written states, made on purpose, in process.


def _ingest(
    feed: Path, store: ChunkStore, settings: AppSettings, embedder: Embedder
) -> IngestReport:
    """An ingest as `news-assistant ingest` runs it: through to the keyword merge it started
    (a test that then damages the folder must not race the merge's swap)."""
    report = ingest([feed], settings=settings, store=store, embedder=embedder, progress=False)
    store.keyword.settle()
    return report


class _Crash(Exception):
    """Stands in for the process dying at this point."""


def test_a_crash_between_upsert_and_stale_delete_is_found_and_healed(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path / "storage")
    store = ChunkStore(settings)
    rows = [_article(1, 8), _article(2, 2)]
    feed = _write_feed(tmp_path / "feed.jsonl", rows)
    _ingest(feed, store, settings, embedder)
    before = store.article_states([a.id for a in _stored_articles(feed)])
    assert len(before) == 2 and all(state.complete for state in before.values())

    rows[0] = _article(1, 2, version=2)  # fewer chunks: the old ones beyond must go
    _write_feed(feed, rows)

    def crash(chunk_ids: list[str]) -> None:
        raise _Crash

    with monkeypatch.context() as patch:
        patch.setattr(store, "delete_chunks", crash)
        with pytest.raises(_Crash):
            _ingest(feed, store, settings, embedder)

    report = check_store(store)
    kinds = {(p.kind, p.article_id) for p in report.errors}
    shrunk = _stored_articles(feed)[0].id
    assert ("incomplete article", shrunk) in kinds
    assert any("2 versions" in p.detail for p in report.errors)
    assert ("keyword index", None) in kinds  # saved before the crash, from the old state

    again = _ingest(feed, store, settings, embedder)
    assert (again.updated + again.repaired, again.unchanged) == (1, 1)
    assert check_store(store).ok
    assert store.article_states([shrunk])[shrunk].found_chunks == len(
        chunk_article(_stored_articles(feed)[0], embedder=embedder, settings=settings)
    )


def test_check_repair_removes_an_incomplete_article_and_ingest_puts_it_back(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = _settings(tmp_path / "storage")
    store = ChunkStore(settings)
    feed = _write_feed(tmp_path / "feed.jsonl", [_article(1, 8), _article(2, 3)])
    _ingest(feed, store, settings, embedder)
    long_one = _stored_articles(feed)[0]
    chunk_ids = sorted(store.chunk_ids_where({"article_id": long_one.id}))
    assert len(chunk_ids) >= 3
    store.delete_chunks([chunk_ids[1]])  # as if the write of a chunk had been lost

    report = check_store(store)
    assert report.broken_articles == [long_one.id]
    (problem,) = [p for p in report.errors if p.kind == "incomplete article"]
    assert f"{len(chunk_ids) - 1} of {len(chunk_ids)} chunks; missing 1" == problem.detail

    repaired = repair_store(store, report)
    assert repaired.deleted_articles == [long_one.id]
    assert repaired.deleted_chunks == len(chunk_ids) - 1
    assert repaired.keyword_rebuilt and repaired.after.ok
    assert all(long_one.id != r.metadata["article_id"] for r in store.keyword.records)

    again = _ingest(feed, store, settings, embedder)
    assert (again.added, again.unchanged) == (1, 1)
    assert check_store(store).ok


def test_an_ingest_resumes_an_article_left_incomplete(tmp_path: Path, embedder: Embedder) -> None:
    settings = _settings(tmp_path / "storage")
    store = ChunkStore(settings)
    feed = _write_feed(tmp_path / "feed.jsonl", [_article(1, 8)])
    _ingest(feed, store, settings, embedder)
    (article,) = _stored_articles(feed)
    chunk_ids = sorted(store.chunk_ids_where({"article_id": article.id}))
    store.delete_chunks(chunk_ids[-2:])
    assert not store.article_states([article.id])[article.id].complete

    report = _ingest(feed, store, settings, embedder)
    assert (report.repaired, report.added, report.updated) == (1, 0, 0)
    assert sorted(store.chunk_ids_where({"article_id": article.id})) == chunk_ids
    assert check_store(store).ok


def test_a_keyword_folder_lost_or_cut_short_is_reported_and_rebuilt(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = _settings(tmp_path / "storage")
    store = ChunkStore(settings)
    feed = _write_feed(tmp_path / "feed.jsonl", [_article(1, 4), _article(2, 4)])
    _ingest(feed, store, settings, embedder)
    folder = store.keyword.directory
    assert check_store(store).ok

    # Cut short: the state file says whole, the records file lost its tail.
    records = folder / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join(lines[:-1]))
    report = check_store(store)
    (problem,) = report.errors
    assert problem.kind == "keyword index" and "does not load" in problem.detail
    fresh = ChunkStore(settings)  # another process would rebuild from Chroma
    assert fresh.sync_keyword_index(force=True)
    assert len(fresh.keyword) == len(lines)
    assert check_store(fresh).ok

    # Lost: a crash between the two renames of a save leaves no folder.
    folder.rename(folder.with_name(folder.name + ".old"))
    report = check_store(store)
    assert [p.kind for p in report.errors] == ["keyword index"]
    assert "no saved keyword index" in report.errors[0].detail
    assert repair_store(store, report).after.ok
    assert (folder / "state.json").exists()


def test_a_failed_keyword_save_costs_only_a_rebuild(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path / "storage")
    store = ChunkStore(settings)
    feed = _write_feed(tmp_path / "feed.jsonl", [_article(1, 3)])
    real_rename = Path.rename

    def full_disk(self: Path, target: Any) -> Any:
        if self.name.endswith(".tmp"):
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "rename", full_disk)
        report = _ingest(feed, store, settings, embedder)
    assert report.added == 1
    assert len(store.keyword) == report.chunks_written  # this process still searches
    assert [p.kind for p in check_store(store).errors] == ["keyword index"]
    fresh = ChunkStore(settings)
    assert fresh.sync_keyword_index(force=True)
    assert check_store(fresh).ok


# One writer process per embedded folder.

_HOLD = """
import sys, time
from serving.config import AppSettings
from index.store import ChunkStore
store = ChunkStore(AppSettings(storage_dir=sys.argv[1]))
if sys.argv[2] == "write":
    store.begin_writes()
print("ready", flush=True)
time.sleep(60)
"""


def _holder(storage: Path, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(storage), mode],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


@pytest.mark.slow
def test_an_embedded_folder_is_written_by_one_process_at_a_time(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    settings = make_settings(storage)
    reader = _holder(storage, "read")
    try:
        store = ChunkStore(settings)  # readers share the folder
        assert store.count() == 0
        with pytest.raises(Exception, match="another process has it open") as raised:
            store.begin_writes()
        assert type(raised.value).__name__ == "StoreUnavailableError"
        assert "chroma run --path" in str(raised.value)
    finally:
        reader.kill()
        reader.wait()
    store.begin_writes()  # the reader is gone

    other = tmp_path / "other"
    writer = _holder(other, "write")
    try:
        with pytest.raises(
            Exception, match=rf"being written by another process \(pid {writer.pid}\)"
        ):
            ChunkStore(make_settings(other))
    finally:
        writer.kill()
        writer.wait()
    assert ChunkStore(make_settings(other)).count() == 0  # a killed writer leaves no lock
