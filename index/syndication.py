"""Syndicated copies: the same wire story from several outlets, found by MinHash, kept once.

The first-stored copy is the canonical article; later copies are recorded on its chunks as
"also published by" (a JSON string, since Chroma metadata values are scalars). The canonical
articles' signatures are persisted beside the keyword index: derived data, checked against
Chroma on every load and rebuilt from the stored chunk texts where they disagree."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.keyword import ChunkRecord
from index.keyword_text import metadata_column

if TYPE_CHECKING:
    from datasketch import MinHash

log = logging.getLogger(__name__)

# Measured on the bundled corpora (docs/retrieval.md, "Syndicated copies"): re-posts of one
# release score 0.78-1.0 on 5-word shingles, while distinct stories made from one template
# (monthly visitor logs, disaster declarations) reach 0.71 and distinct stories on one topic
# 0.19. MinHash only finds candidates (its estimate errs by about 0.04 at 128 permutations);
# the exact Jaccard of the shingles decides.
THRESHOLD = 0.75
_CANDIDATE_THRESHOLD = 0.5
SHINGLE_WORDS = 5
NUM_PERM = 128
ALSO_KEY = "also_published_by"  # chunk metadata: JSON list of copies
_FILE_VERSION = 2  # 2: records the MinHash scheme its values were made with
_WORD = re.compile(r"\w+", re.UNICODE)
_FOLD_AT = 4096  # rows added before they join the sorted band keys


@dataclass(frozen=True, slots=True)
class Copy:
    """A syndicated copy of a stored article: where else it appeared."""

    id: str
    content_hash: str
    source: str
    title: str
    url: str
    published: str

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "hash": self.content_hash,
            "source": self.source,
            "title": self.title,
            "url": self.url,
            "published": self.published,
        }


def shingles(body: str, size: int = SHINGLE_WORDS) -> set[str]:
    """Word n-grams of the body, lower-cased, punctuation and layout gone."""
    words = _WORD.findall(body.lower())
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


@functools.cache
def minhash_scheme() -> str:
    """datasketch 2 hashes with a scheme it must be told again to rebuild a MinHash from saved
    values (older versions have one, unnamed): saved values are only read back under the same
    scheme. (datasketch is imported when first needed: it takes half a second, scipy and all,
    from every command's start.)"""
    from datasketch import MinHash

    return str(getattr(MinHash(num_perm=1), "scheme", "legacy"))


def from_values() -> dict[str, Any]:
    """What datasketch's MinHash needs besides saved hash values to rebuild the same MinHash."""
    return {"scheme": minhash_scheme()} if minhash_scheme() != "legacy" else {}


def signature(body: str) -> MinHash:
    """The MinHash of a body's shingles."""
    from datasketch import MinHash

    minhash = MinHash(num_perm=NUM_PERM)
    minhash.update_batch([s.encode("utf-8") for s in shingles(body)])
    return minhash


def copies_of(metadata: dict[str, Any]) -> list[Copy]:
    """The copies recorded on a chunk's metadata (none when absent or unreadable)."""
    raw = metadata.get(ALSO_KEY)
    if not raw:
        return []
    try:
        items = json.loads(str(raw))
        return [
            Copy(
                str(i["id"]),
                str(i.get("hash", "")),
                str(i.get("source", "")),
                str(i.get("title", "")),
                str(i.get("url", "")),
                str(i.get("published", "")),
            )
            for i in items
        ]
    except (ValueError, TypeError, KeyError):
        return []


def encode_copies(copies: Sequence[Copy]) -> str:
    """The metadata value for these copies."""
    return json.dumps([c.as_json() for c in copies], ensure_ascii=False, sort_keys=True)


def stored_hash(content_hash: str, copies: Sequence[Copy]) -> str:
    """The `article_hash` chunks carry: the content hash, plus a digest of the copies if any.

    The keyword index's fingerprint reads `article_hash`, so a new copy on a stored article
    gives the collection a new state that every process's keyword index follows."""
    if not copies:
        return content_hash
    digest = hashlib.sha1(encode_copies(copies).encode("utf-8")).hexdigest()[:8]
    return f"{content_hash}+{digest}"


def content_hash_of(article_hash: str) -> str:
    """The article's own content hash, without the digest of its copies."""
    return article_hash.split("+", 1)[0]


def public_copies(metadata: dict[str, Any]) -> list[dict[str, str]]:
    """The copies as readers see them: outlet, title, URL, date."""
    return [
        {"source": c.source, "title": c.title, "url": c.url, "published": c.published}
        for c in copies_of(metadata)
    ]


def bodies_from_chunks(records: Iterable[ChunkRecord]) -> dict[str, tuple[str, str]]:
    """Article id -> (article_hash, body) put back together from its chunks' character ranges."""
    parts: dict[str, list[ChunkRecord]] = {}
    for record in records:
        parts.setdefault(str(record.metadata.get("article_id", "")), []).append(record)
    out: dict[str, tuple[str, str]] = {}
    for article_id, chunks in parts.items():
        chunks.sort(key=lambda r: int(r.metadata.get("chunk", 0)))
        text, reached = "", 0
        for chunk in chunks:
            start = int(chunk.metadata.get("start", reached))
            # Chunks overlap: keep only what lies beyond the text so far.
            text += chunk.text[max(reached - start, 0) :]
            reached = max(reached, start + len(chunk.text))
        out[article_id] = (str(chunks[0].metadata.get("article_hash", "")), text)
    return out


@functools.cache
def _banding() -> tuple[int, int, np.ndarray]:
    """The LSH bands datasketch's MinHashLSH picks for the candidate threshold: the number of
    bands, the values in each, and a multiplier per value for the bands' keys. A stored
    article is a candidate when its signature equals the query's in one whole band, as there."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=_CANDIDATE_THRESHOLD, num_perm=NUM_PERM)
    bands, width = int(lsh.b), int(lsh.r)
    if [tuple(r) for r in lsh.hashranges] != [(i * width, (i + 1) * width) for i in range(bands)]:
        raise RuntimeError("datasketch's LSH bands are not consecutive runs of values")
    odd = np.random.default_rng(0x5EED).integers(0, 2**63, size=(bands, width), dtype=np.uint64)
    return bands, width, odd * np.uint64(2) + np.uint64(1)


def _band_keys(values: np.ndarray) -> np.ndarray:
    """A 64-bit key per row and band of the signatures `values` (rows, NUM_PERM), (rows, bands):
    equal bands get equal keys; each band has its own multipliers, so one array holds all."""
    bands, width, multipliers = _banding()
    cut = values[:, : bands * width].reshape(len(values), bands, width)
    keys = cut[:, :, 0] * multipliers[:, 0]
    for k in range(1, width):
        keys += cut[:, :, k] * multipliers[:, k]
    return keys


class _Signatures:
    """The stored articles' signatures, a row each, and their LSH bands as one sorted array.

    Its entries are a band key's high bits with the low bits saying where it is from (row *
    bands + band): a look-up finds the key's entries, then checks the band's values. Rows
    added since it was sorted are found through a dict; rows replaced or dropped stay until
    enough of them pile up, skipped by look-ups."""

    def __init__(self, ids: list[str], hashes: list[str], values: np.ndarray) -> None:
        self.ids = ids  # row -> article id
        self.hashes = hashes  # row -> content hash
        self.values = values  # (rows, NUM_PERM) uint32 or uint64: the first rows
        self.added: list[np.ndarray] = []  # the rows after those
        self.row = {article_id: row for row, article_id in enumerate(ids)}  # live ones only
        self.dead: set[int] = set()
        self.recent: dict[int, list[int]] = {}  # band key -> rows among `added`
        self._sorted: np.ndarray | None = None  # the entries of `values`' bands (when asked)
        self._bits = 0  # the low bits of an entry that say where it is from

    def put(self, article_id: str, content_hash: str, values: np.ndarray) -> None:
        old = self.row.get(article_id)
        if old is not None:
            self.dead.add(old)
        row = len(self.ids)
        self.ids.append(article_id)
        self.hashes.append(content_hash)
        self.added.append(values)
        self.row[article_id] = row
        for key in _band_keys(values[None, :])[0].tolist():
            self.recent.setdefault(key, []).append(row)
        if len(self.added) >= _FOLD_AT:
            self.fold()

    def drop(self, article_id: str) -> bool:
        row = self.row.pop(article_id, None)
        if row is not None:
            self.dead.add(row)
        return row is not None

    def hash_of(self, article_id: str) -> str | None:
        row = self.row.get(article_id)
        return None if row is None else self.hashes[row]

    def candidates(self, query: np.ndarray) -> list[str]:
        """The live articles whose signature equals `query` in some band, by id."""
        bands, width, _ = _banding()
        keys = _band_keys(query[None, :])[0]
        entries = self._entries()
        low = np.uint64((1 << self._bits) - 1)
        high = keys & ~low
        lo = np.searchsorted(entries, high, "left").tolist()
        hi = np.searchsorted(entries, high | low, "right").tolist()
        spans = [entries[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        found: set[int] = set()
        if spans:
            rows, band = np.divmod((np.concatenate(spans) & low).astype(np.int64), bands)
            cols = band[:, None] * width + np.arange(width)
            same = (self.values[rows[:, None], cols] == query[cols]).all(axis=1)
            found.update(rows[same].tolist())  # the keys matched; check the values
        base = len(self.values)
        for number, key in enumerate(keys.tolist()):
            cut = slice(number * width, (number + 1) * width)
            for row in self.recent.get(key, ()):
                if np.array_equal(self.added[row - base][cut], query[cut]):
                    found.add(row)
        return sorted(self.ids[row] for row in found - self.dead)

    def _entries(self) -> np.ndarray:
        if self._sorted is None:
            bands = _banding()[0]
            # Room for twice the rows, so that rows added later fit in.
            self._bits = (bands * max(2 * len(self.values), _FOLD_AT)).bit_length()
            self._sorted = self._pack(self.values, 0)
        return self._sorted

    def _pack(self, values: np.ndarray, first: int) -> np.ndarray:
        """The sorted entries of rows `values`, the first of them row `first`."""
        keys = _band_keys(values).ravel()
        at = np.arange(first * _banding()[0], first * _banding()[0] + len(keys), dtype=np.uint64)
        keys &= ~np.uint64((1 << self._bits) - 1)
        keys |= at
        keys.sort()
        return keys

    def fold(self) -> None:
        """Move the added rows in with the others; drop the dead rows once they are many."""
        if self.added:
            extra = np.stack(self.added)
            rows = len(self.values) + len(extra)
            if self._sorted is not None and rows * _banding()[0] < 1 << self._bits:
                merged = np.concatenate([self._sorted, self._pack(extra, len(self.values))])
                merged.sort()
                self._sorted = merged
            else:
                self._sorted = None
            self.values = _narrow(np.concatenate([self.values, _narrow(extra)]))
            self.added.clear()
            self.recent.clear()
        if len(self.dead) * 4 > len(self.ids):
            self.ids, self.hashes, self.values = self._live()
            self.row = {article_id: row for row, article_id in enumerate(self.ids)}
            self.dead.clear()
            self._sorted = None

    def live(self) -> tuple[list[str], list[str], np.ndarray]:
        """The live rows, in one matrix: ids, content hashes, signatures."""
        self.fold()
        return self._live()

    def _live(self) -> tuple[list[str], list[str], np.ndarray]:
        if not self.dead:
            return self.ids, self.hashes, self.values
        rows = sorted(self.row.values())
        return [self.ids[r] for r in rows], [self.hashes[r] for r in rows], self.values[rows]


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a file apart from the one that was there before: None when there is none."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _narrow(values: np.ndarray) -> np.ndarray:
    """Signatures as uint32 where every value fits (those of the affine32 and legacy schemes
    do): half the memory and half the file. Either width reads back the same values."""
    if values.dtype != np.uint32 and len(values) and int(values.max()) <= 0xFFFFFFFF:
        return values.astype(np.uint32)
    return values if values.dtype == np.uint32 else values.astype(np.uint64, copy=False)


def _uint64(minhash: MinHash) -> np.ndarray:
    values = np.array(minhash.hashvalues, dtype=np.uint64)
    if values.shape != (NUM_PERM,):
        raise ValueError(f"expected a MinHash of {NUM_PERM} values, got {values.shape}")
    return values


class SyndicationIndex:
    """MinHash signatures of the stored (canonical) articles, banded for LSH look-ups."""

    def __init__(self, path: Path, threshold: float = THRESHOLD) -> None:
        self.path = path
        self.threshold = threshold
        self._signatures = _Signatures([], [], np.zeros((0, NUM_PERM), dtype=np.uint64))
        self._saved: tuple[int, int, int] | None = None  # the file as saved, None: changed since
        self._bodies: dict[str, str] = {}  # canonical id -> body, of those added in this process
        self._records: Sequence[ChunkRecord] = ()  # the stored chunks
        self._row_articles: list[str] = []  # each stored chunk's article id, until grouped:
        self._chunks: dict[str, list[int]] | None = None  # canonical id -> its chunks' rows
        self.copies: dict[str, list[Copy]] = {}  # canonical id -> its copies
        self.copy_owner: dict[str, str] = {}  # copy id -> canonical id

    @classmethod
    def for_records(
        cls,
        path: Path,
        records: Sequence[ChunkRecord],
        columns: Callable[[str], list[Any]] | None = None,
    ) -> SyndicationIndex:
        """The index of the articles in `records` (Chroma's chunks): persisted signatures where
        they match, signatures made again from the chunk texts where not, saved if it changed.
        `columns(key)`: every record's metadata value for key, read without a dict per chunk
        (the keyword index's columns), else read from each record's metadata."""
        index = cls(path)
        if columns is None:
            columns = functools.partial(metadata_column, records)
        index._records = records
        wanted = index._read_columns(columns)
        ids, hashes, values, stamp = index._load()
        saved = len(ids)
        keep: dict[str, int] = {}
        for row, (article_id, content_hash) in enumerate(zip(ids, hashes, strict=True)):
            if wanted.get(article_id) == content_hash:
                keep.setdefault(article_id, row)
        if len(keep) < len(ids):
            rows = list(keep.values())
            ids, hashes, values = list(keep), [hashes[r] for r in rows], values[rows]
        missing = [article_id for article_id in wanted if article_id not in keep]
        if missing:
            lost = set(missing)
            rows = [row for row, article in enumerate(index._row_articles) if article in lost]
            bodies = bodies_from_chunks(records[row] for row in rows)
            made = [_uint64(signature(bodies.get(a, ("", ""))[1])) for a in missing]
            values = _narrow(np.concatenate([values, np.array(made, dtype=np.uint64)]))
            ids, hashes = ids + missing, hashes + [wanted[a] for a in missing]
        index._signatures = _Signatures(ids, hashes, values)
        if missing or len(keep) != saved:
            index.save()
        else:
            index._saved = stamp
        return index

    def _read_columns(self, columns: Callable[[str], list[Any]]) -> dict[str, str]:
        """Each article's content hash, and its copies, from its first chunk's metadata: one
        pass over three columns (the chunks are grouped by article when a look-up needs them)."""
        wanted: dict[str, str] = {}
        ids, hashes, also = columns("article_id"), columns("article_hash"), columns(ALSO_KEY)
        self._row_articles = [str(article if article is not None else "") for article in ids]
        for article_id, stored_hash, raw in zip(self._row_articles, hashes, also, strict=True):
            if article_id in wanted:
                continue
            wanted[article_id] = content_hash_of(
                str(stored_hash if stored_hash is not None else "")
            )
            copies = copies_of({ALSO_KEY: raw}) if raw else []
            if copies:
                self.copies[article_id] = copies
                for copy in copies:
                    self.copy_owner[copy.id] = article_id
        return wanted

    def add(self, article_id: str, content_hash: str, body: str, minhash: MinHash) -> None:
        """Keep a (new or changed) canonical article's signature."""
        self._signatures.put(article_id, content_hash, _uint64(minhash))
        self._saved = None
        self._bodies[article_id] = body
        if self._chunks is not None:
            self._chunks.pop(article_id, None)

    def content_hash(self, article_id: str) -> str | None:
        """A stored article's own content hash; None when it is not stored."""
        return self._signatures.hash_of(article_id)

    def _body(self, article_id: str) -> str:
        if article_id not in self._bodies:
            if self._chunks is None:  # once: a stored article is a candidate
                # By the article id column read at load: no metadata dict made for every chunk
                # (5 s at 500k chunks, in the first write that met a candidate).
                self._chunks = {}
                for row, key in enumerate(self._row_articles):
                    self._chunks.setdefault(key, []).append(row)
                self._row_articles = []
            chunks = (self._records[row] for row in self._chunks.get(article_id, []))
            self._bodies[article_id] = bodies_from_chunks(chunks).get(article_id, ("", ""))[1]
        return self._bodies[article_id]

    def discard(self, article_id: str) -> None:
        """Forget a canonical article (deleted), and the copies recorded on it."""
        if self._signatures.drop(article_id):
            self._saved = None
        self._bodies.pop(article_id, None)
        if self._chunks is not None:
            self._chunks.pop(article_id, None)
        for copy in self.copies.pop(article_id, []):
            self.copy_owner.pop(copy.id, None)

    def candidates(self, minhash: MinHash) -> list[str]:
        """The stored articles whose signature shares an LSH band with `minhash`, by id: those
        datasketch's MinHashLSH at the candidate threshold would return."""
        return self._signatures.candidates(_uint64(minhash))

    def original_of(
        self, body: str, minhash: MinHash, *, exclude: str = ""
    ) -> tuple[str, float] | None:
        """The stored article this body copies (the most similar above the threshold; the
        first id of equals), with the Jaccard similarity of their shingles."""
        best: tuple[str, float] | None = None
        mine = shingles(body)
        for candidate in self.candidates(minhash):
            if candidate == exclude:
                continue
            theirs = shingles(self._body(candidate))
            score = len(mine & theirs) / len(mine | theirs) if mine and theirs else 0.0
            if score >= self.threshold and (best is None or score > best[1]):
                best = (candidate, score)
        return best

    def record_copy(self, canonical: str, copy: Copy) -> bool:
        """Note `copy` on `canonical`; False when it was already recorded as it is."""
        listed = self.copies.setdefault(canonical, [])
        for i, known in enumerate(listed):
            if known.id == copy.id:
                if known == copy:
                    return False
                listed[i] = copy
                return True
        listed.append(copy)
        self.copy_owner[copy.id] = canonical
        return True

    def forget_copy(self, copy_id: str) -> str | None:
        """Drop a copy's record; the canonical article it was on, or None."""
        canonical = self.copy_owner.pop(copy_id, None)
        if canonical is not None:
            self.copies[canonical] = [c for c in self.copies[canonical] if c.id != copy_id]
        return canonical

    def _load(self) -> tuple[list[str], list[str], np.ndarray, tuple[int, int, int] | None]:
        """The saved ids, content hashes and signatures, and the file's stamp; none when there
        is no usable file (they are made again)."""
        empty = np.zeros((0, NUM_PERM), dtype=np.uint64)
        try:
            stamp = _stamp(self.path)
            with np.load(self.path, allow_pickle=False) as data:
                if (
                    int(data["version"]) != _FILE_VERSION
                    or int(data["num_perm"]) != NUM_PERM
                    or str(data["scheme"]) != minhash_scheme()
                ):
                    return [], [], empty, None
                ids, hashes, values = data["ids"], data["hashes"], data["values"]
                if (
                    ids.ndim != 1
                    or hashes.shape != ids.shape
                    or values.shape != (len(ids), NUM_PERM)
                ):
                    raise ValueError("arrays of different lengths")
                if ids.dtype.kind != "U" or hashes.dtype.kind != "U":
                    raise ValueError("ids or hashes not strings")
                return (
                    ids.tolist(),
                    hashes.tolist(),
                    _narrow(values),
                    stamp,
                )
        except FileNotFoundError:
            return [], [], empty, None
        except Exception as error:  # derived data that fails to load is made again, whatever
            log.info("syndication signatures at %s not usable (%s); rebuilding", self.path, error)
            return [], [], empty, None

    def save(self) -> None:
        """Persist the signatures atomically, unless the file holds them as they are; a failure
        only costs a rebuild later."""
        if self._saved is not None and self._saved == _stamp(self.path):
            return
        ids, hashes, values = self._signatures.live()
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as out:
                np.savez(
                    out,
                    version=np.int64(_FILE_VERSION),
                    num_perm=np.int64(NUM_PERM),
                    scheme=np.array(minhash_scheme()),
                    ids=np.array(ids, dtype=str),
                    hashes=np.array(hashes, dtype=str),
                    values=values,
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as error:
            log.warning("could not save syndication signatures to %s: %s", self.path, error)
            return
        self._saved = _stamp(self.path)


def signatures_path(keyword_dir: Path, collection: str) -> Path:
    """Where a collection's signatures live: beside its keyword index."""
    return keyword_dir / f"{collection}.minhash.npz"
