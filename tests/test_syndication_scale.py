"""The syndication index on its own: signatures in arrays, LSH bands in sorted keys.

Real MinHash signatures throughout; datasketch's own MinHashLSH is the reference for the
candidates the bands must give."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

import index.syndication as syndication
from index.keyword import ChunkRecord
from index.syndication import NUM_PERM, SyndicationIndex, from_values, signature

_WORDS = (
    "harbour ferry council budget school river bridge storm police court election minister "
    "strike port union wage train airport hospital doctor nurse farmer crop price market bank "
    "rate loan house rent road fire flood village mayor festival museum team match coach season "
    "player fans stadium report study water power grid plant factory worker contract vote"
).split()


def _story(seed: int, words: int = 160) -> str:
    pick = random.Random(seed)
    return " ".join(pick.choice(_WORDS) for _ in range(words))


def _edited(body: str, changes: int, seed: int = 0) -> str:
    """`body` with `changes` of its words replaced."""
    pick = random.Random(seed)
    words = body.split()
    for _ in range(changes):
        words[pick.randrange(len(words))] = pick.choice(["said", "new", "Tuesday", "local"])
    return " ".join(words)


def _records(bodies: dict[str, str], size: int = 300, overlap: int = 40) -> list[ChunkRecord]:
    """Each body as overlapping chunks, the way Chroma stores them."""
    out: list[ChunkRecord] = []
    for article_id, body in bodies.items():
        start = n = 0
        while True:
            meta = {"article_id": article_id, "article_hash": f"h-{article_id}", "chunk": n}
            meta["start"] = start
            out.append(ChunkRecord(f"{article_id}-{n:04d}", body[start : start + size], meta))
            if start + size >= len(body):
                break
            start, n = start + size - overlap, n + 1
    return out


BODIES = {f"a{n}": _story(n) for n in range(30)}


def _index(tmp_path: Path, bodies: dict[str, str] = BODIES) -> SyndicationIndex:
    return SyndicationIndex.for_records(tmp_path / "news.minhash.npz", _records(bodies))


def _original(index: SyndicationIndex, body: str) -> str | None:
    found = index.original_of(body, signature(body))
    return found[0] if found else None


def test_a_near_copy_is_found_and_another_story_is_not(tmp_path: Path) -> None:
    index = _index(tmp_path)
    found = index.original_of(_edited(BODIES["a7"], 3), signature(_edited(BODIES["a7"], 3)))
    assert found is not None and found[0] == "a7" and found[1] >= syndication.THRESHOLD
    assert _original(index, _story(999)) is None
    assert index.content_hash("a7") == "h-a7" and index.content_hash("nope") is None


def test_an_added_article_is_found_in_the_same_index_until_discarded(tmp_path: Path) -> None:
    index = _index(tmp_path)
    body = _story(500)
    index.add("new", "h-new", body, signature(body))
    assert _original(index, _edited(body, 3)) == "new"
    assert index.content_hash("new") == "h-new"
    index.discard("new")
    assert _original(index, _edited(body, 3)) is None and index.content_hash("new") is None
    index.discard("a3")  # one of the stored rows
    assert _original(index, _edited(BODIES["a3"], 3)) is None
    assert _original(index, _edited(BODIES["a4"], 3)) == "a4"


def test_a_changed_article_is_found_by_its_new_text_only(tmp_path: Path) -> None:
    index = _index(tmp_path)
    body = _story(600)
    index.add("a5", "h-a5-v2", body, signature(body))
    assert _original(index, _edited(body, 3)) == "a5"
    assert _original(index, _edited(BODIES["a5"], 3)) is None
    assert index.content_hash("a5") == "h-a5-v2"


def test_many_adds_fold_into_the_sorted_keys_and_stay_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(syndication, "_FOLD_AT", 4)
    index = _index(tmp_path)
    index.candidates(signature(BODIES["a0"]))  # sorts the stored rows' keys
    added = {f"n{n}": _story(700 + n) for n in range(11)}
    for article_id, body in added.items():
        index.add(article_id, f"h-{article_id}", body, signature(body))
    for article_id in [*added][:8]:  # many dead rows: the rest are laid out again
        index.discard(article_id)
    for article_id in list(BODIES)[:6]:
        index.discard(article_id)
    index.add("n0", "h-n0", added["n0"], signature(added["n0"]))
    for article_id, body in {**BODIES, **added}.items():
        gone = article_id in list(BODIES)[:6] or article_id in [*added][1:8]
        assert _original(index, _edited(body, 3)) == (None if gone else article_id)


def test_the_candidates_are_those_of_datasketchs_lsh(tmp_path: Path) -> None:
    """Stored stories and near-copies at many distances: the same candidates as MinHashLSH at
    the candidate threshold, whether stored rows, added rows or folded ones."""
    stored = {**BODIES, **{f"c{n}": _edited(BODIES[f"a{n}"], 2 * n, seed=n) for n in range(12)}}
    lsh = MinHashLSH(threshold=syndication._CANDIDATE_THRESHOLD, num_perm=NUM_PERM)
    for article_id, body in stored.items():
        lsh.insert(article_id, signature(body))
    loaded = _index(tmp_path, stored)
    added = SyndicationIndex(tmp_path / "added.npz")
    for article_id, body in stored.items():
        added.add(article_id, "h", body, signature(body))
    queries = [_edited(BODIES[f"a{n % 15}"], n % 25, seed=100 + n) for n in range(60)]
    several = 0
    for body in queries:
        want = sorted(lsh.query(signature(body)))
        several += len(want) > 1
        assert loaded.candidates(signature(body)) == want
        assert added.candidates(signature(body)) == want
    added._signatures.fold()
    assert [added.candidates(signature(b)) for b in queries] == [
        sorted(lsh.query(signature(b))) for b in queries
    ]
    assert several >= 5  # the check compares sets, not only single hits


def test_saved_and_loaded_again_finds_the_same(tmp_path: Path) -> None:
    index = _index(tmp_path)
    body = _story(800)
    index.add("new", "h-new", body, signature(body))
    index.discard("a2")
    index.save()
    records = _records({k: v for k, v in BODIES.items() if k != "a2"} | {"new": body})
    again = SyndicationIndex.for_records(tmp_path / "news.minhash.npz", records)
    assert again._signatures.added == []  # every signature came from the file
    for query in [_edited(b, 3) for b in (body, BODIES["a2"], BODIES["a9"])]:
        assert again.original_of(query, signature(query)) == index.original_of(
            query, signature(query)
        )
    assert again.content_hash("new") == "h-new" and again.content_hash("a2") is None
    with np.load(tmp_path / "news.minhash.npz") as data:  # as the earlier code read it back
        row = data["ids"].tolist().index("new")
        made = MinHash(num_perm=NUM_PERM, hashvalues=data["values"][row], **from_values())
    assert made == signature(body)


def test_save_writes_only_what_changed(tmp_path: Path) -> None:
    index = _index(tmp_path)
    path = tmp_path / "news.minhash.npz"
    written = path.stat().st_mtime_ns, path.stat().st_ino
    index.save()
    index.record_copy("a1", syndication.Copy("x", "hx", "Outlet", "T", "u", "2024-01-01"))
    index.save()  # copies live in Chroma's metadata, not in this file
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == written
    index.discard("a1")
    index.save()
    assert (path.stat().st_mtime_ns, path.stat().st_ino) != written
    path.unlink()
    index.save()  # a lost file is written again
    with np.load(path) as data:
        assert len(data["ids"]) == len(BODIES) - 1


def test_a_file_in_the_earlier_layout_is_read_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file the MinHashLSH version wrote (ids sorted, one row each) loads unchanged."""
    path = tmp_path / "news.minhash.npz"
    ids = sorted(BODIES)
    values = np.zeros((len(ids), NUM_PERM), dtype=np.uint64)
    for row, article_id in enumerate(ids):
        values[row] = signature(BODIES[article_id]).hashvalues
    with path.open("wb") as out:
        np.savez(
            out,
            version=np.int64(2),
            num_perm=np.int64(NUM_PERM),
            scheme=np.array(syndication.minhash_scheme()),
            ids=np.array(ids, dtype=str),
            hashes=np.array([f"h-{i}" for i in ids], dtype=str),
            values=values,
        )
    written = path.stat().st_mtime_ns
    made: list[str] = []
    real = syndication.signature
    monkeypatch.setattr(syndication, "signature", lambda b: made.append(b) or real(b))
    index = SyndicationIndex.for_records(path, _records(BODIES))
    assert made == [] and path.stat().st_mtime_ns == written
    assert _original(index, _edited(BODIES["a11"], 3)) == "a11"


def test_signatures_missing_or_stale_in_the_file_are_made_again(tmp_path: Path) -> None:
    _index(tmp_path, {k: v for k, v in BODIES.items() if k != "a1"})
    changed = {**BODIES, "a2": _story(900)}
    records = _records(changed)
    for record in records:  # a2 was rewritten since the file was saved
        if record.metadata["article_id"] == "a2":
            record.metadata["article_hash"] = "h-a2-v2"
    index = SyndicationIndex.for_records(tmp_path / "news.minhash.npz", records)
    assert _original(index, _edited(BODIES["a1"], 3)) == "a1"
    assert _original(index, _edited(changed["a2"], 3)) == "a2"
    assert _original(index, _edited(BODIES["a2"], 3)) is None
    with np.load(tmp_path / "news.minhash.npz") as data:  # and saved
        assert sorted(data["ids"].tolist()) == sorted(BODIES)
        assert dict(zip(data["ids"].tolist(), data["hashes"].tolist(), strict=True))["a2"] == (
            "h-a2-v2"
        )


class _CountingRecord(ChunkRecord):
    """A chunk that counts the reads of its metadata (a dict made per read, at scale)."""

    reads = 0

    @property
    def metadata(self) -> dict[str, object]:  # type: ignore[override]
        _CountingRecord.reads += 1
        return self.__dict__["_meta"]

    @metadata.setter
    def metadata(self, value: dict[str, object]) -> None:
        self.__dict__["_meta"] = value


def test_a_candidate_is_read_from_its_own_chunks_alone(tmp_path: Path) -> None:
    """Meeting a stored article as a near-copy candidate reads that article's chunks, not every
    chunk's metadata: at 500k chunks that was 5 s of a running app's first ingest."""
    plain = _records(BODIES)
    records = [_CountingRecord(r.id, r.text, r.metadata) for r in plain]
    columns = {key: [r.metadata.get(key) for r in plain] for key in ("article_id", "article_hash")}
    index = SyndicationIndex.for_records(
        tmp_path / "news.minhash.npz", records, lambda key: columns.get(key, [None] * len(plain))
    )
    _CountingRecord.reads = 0
    assert _original(index, _edited(BODIES["a7"], 3)) == "a7"
    mine = sum(1 for r in plain if r.metadata["article_id"] == "a7")
    assert 0 < _CountingRecord.reads <= 4 * mine < len(records) / 5
