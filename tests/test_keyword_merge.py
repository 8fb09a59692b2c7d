"""Merging the keyword index off the write path: size tiers, a main merge on a thread while
writes go on, what those writes changed kept, saved so that a new process loads the merge."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index import keyword_merge
from index.keyword import KeywordIndex
from index.keyword_merge import DELTA_SHARE, MAX_DELTAS, TIER_FACTOR, next_merge

from .test_keyword_segments import _assert_like_one_index, _record


def test_like_sized_deltas_merge_in_fours_and_all_into_the_main_past_its_share() -> None:
    assert next_merge([1000]) is None
    assert next_merge([1000, 5, 5, 5]) is None  # three of a tier
    assert next_merge([1000, 5, 5, 5, 5]) == (1, 5)
    assert next_merge([1000, 40, 5, 5, 5, 5]) == (2, 6)  # not the bigger one below them
    assert next_merge([1000, 20, 20, 20, 6]) is None  # a small one on top waits for its like
    assert next_merge([1000, 20, 20, 20, 6, 6, 6, 6]) == (4, 8)
    assert next_merge([1000, 20, 20, 20, 24]) == (1, 5)  # ... which then joins the run above
    assert next_merge([1000, 60, 30, 10]) is None
    share = int(DELTA_SHARE * 1000)
    assert next_merge([1000, share + 1]) == (0, 2)
    assert next_merge([10**6, *([1] * (MAX_DELTAS + 1))])[0] in (0, 1)  # type: ignore[index]
    many = [10**6, *(TIER_FACTOR ** (k % 5 + 1) + 1 for k in range(MAX_DELTAS + 1))]
    assert next_merge(many) == (1, len(many))


@pytest.fixture
def held_merge(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Merges wait, once begun, until the test sets `release`; `started` says one began."""
    started, release = threading.Event(), threading.Event()
    real = keyword_merge.merge

    def held(*args: Any) -> Any:
        started.set()
        assert release.wait(60)
        return real(*args)

    monkeypatch.setattr(keyword_merge, "merge", held)
    yield started, release
    release.set()  # a failed test leaves no merge thread waiting


def _index(tmp_path: Path, size: int) -> tuple[KeywordIndex, dict[str, Any]]:
    index = KeywordIndex(tmp_path / "kw")
    live = {r.id: r for r in (_record(n) for n in range(size))}
    index.rebuild(list(live.values()), generation="g0")
    return index, live


def test_writes_go_on_and_are_searchable_while_the_main_merge_runs(
    tmp_path: Path, held_merge: tuple[threading.Event, threading.Event]
) -> None:
    index, live = _index(tmp_path, 40)
    started, release = held_merge
    step = 0

    def write(deletes: list[str]) -> None:
        nonlocal step
        changed = [_record(step % 40, f"v{step + 2}"), _record(100 + step)]
        index.apply(changed, deletes, f"g{step + 1}")
        live.update((r.id, r) for r in changed)
        for chunk_id in deletes:
            live.pop(chunk_id, None)
        step += 1

    while not started.is_set():  # past the main segment's share: the merge starts
        write([])
        assert step < 20
    merged_from = index.snapshot()
    # Meanwhile: writes that replace and delete chunks of the segments being merged.
    for n in range(6):
        write([f"a{30 + n}-0000"])
    assert len(index.snapshot().segments) > len(merged_from.segments)
    _assert_like_one_index(index, live)  # searchable at once, merge or no merge
    fresh = KeywordIndex(tmp_path / "kw")
    assert fresh.load_persisted(index.fingerprint)
    _assert_like_one_index(fresh, live)

    release.set()
    index.settle()
    assert len(index.snapshot().segments) < len(merged_from.segments)
    _assert_like_one_index(index, live)  # the deletes since the merge began stay deleted
    fresh = KeywordIndex(tmp_path / "kw")
    assert fresh.load_persisted(index.fingerprint)
    assert fresh.read_manifest()["main_records"] > 40  # type: ignore[index]
    _assert_like_one_index(fresh, live)
    assert fresh.check_persisted(index.fingerprint) is None


def test_many_small_writes_keep_few_segments_and_each_merge_is_saved(tmp_path: Path) -> None:
    index, live = _index(tmp_path, 2000)
    for n in range(60):
        records = [_record(5000 + 3 * n + i) for i in range(3)]
        index.apply(records, [], f"g{n}")
        live.update((r.id, r) for r in records)
        index.settle()
        assert index.segment_count <= 1 + (TIER_FACTOR - 1) * 3
    manifest = index.read_manifest()
    assert manifest is not None and len(manifest["segments"]) == index.segment_count - 1
    _assert_like_one_index(index, live)
    fresh = KeywordIndex(tmp_path / "kw")
    assert fresh.load_persisted(index.fingerprint)
    assert fresh.segment_count == index.segment_count
    _assert_like_one_index(fresh, live)


def test_a_merge_of_segments_the_folder_no_longer_lists_is_kept_in_memory_only(
    tmp_path: Path, held_merge: tuple[threading.Event, threading.Event]
) -> None:
    index, live = _index(tmp_path, 40)
    started, release = held_merge
    for n in range(6):
        index.apply([_record(100 + n)], [], f"g{n}")
        live[_record(100 + n).id] = _record(100 + n)
    assert started.wait(60)
    other = KeywordIndex(tmp_path / "kw")  # another process rebuilds the folder meanwhile
    other.rebuild([_record(n, "other") for n in range(5)], generation="x")
    release.set()
    index.settle()
    _assert_like_one_index(index, live)  # this process's merge, in memory
    assert other.check_persisted(other.fingerprint) is None  # the folder is the other's
    fresh = KeywordIndex(tmp_path / "kw")
    assert fresh.load_persisted(other.fingerprint) and len(fresh) == 5


def test_the_folder_of_a_merge_whose_process_died_is_cleared(tmp_path: Path) -> None:
    index, _ = _index(tmp_path, 10)
    dead = tmp_path / "kw.tmp-999999999-sdeadbeef"
    mine = tmp_path / f"kw.tmp-{os.getpid()}-sbusy"
    for folder in (dead, mine):
        folder.mkdir()
        (folder / "records.jsonl").write_text("half written\n")
    index.apply([_record(50)], [], "g1")
    assert not dead.exists() and mine.exists()
