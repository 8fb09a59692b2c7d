"""Syndicated copies: the same wire story from several outlets, found by MinHash, kept once.

The first-stored copy is the canonical article; later copies are recorded on its chunks as
"also published by" (a JSON string, since Chroma metadata values are scalars). The canonical
articles' signatures are persisted beside the keyword index: derived data, checked against
Chroma on every load and rebuilt from the stored chunk texts where they disagree."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH

from index.keyword import ChunkRecord

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
# datasketch 2 hashes with a scheme it must be told again to rebuild a MinHash from saved values
# (older versions have one, unnamed): saved values are only read back under the same scheme.
_SCHEME: str = getattr(MinHash(num_perm=1), "scheme", "legacy")
_FROM_VALUES: dict[str, Any] = {"scheme": _SCHEME} if _SCHEME != "legacy" else {}
_WORD = re.compile(r"\w+", re.UNICODE)


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


def signature(body: str) -> MinHash:
    """The MinHash of a body's shingles."""
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


class SyndicationIndex:
    """MinHash signatures of the stored (canonical) articles, in an LSH for look-ups."""

    def __init__(self, path: Path, threshold: float = THRESHOLD) -> None:
        self.path = path
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=_CANDIDATE_THRESHOLD, num_perm=NUM_PERM)
        self._signatures: dict[str, tuple[str, MinHash]] = {}  # id -> (content hash, minhash)
        self._bodies: dict[str, str] = {}  # canonical id -> body, of those added in this process
        self._chunks: dict[str, list[ChunkRecord]] = {}  # canonical id -> its stored chunks
        self.copies: dict[str, list[Copy]] = {}  # canonical id -> its copies
        self.copy_owner: dict[str, str] = {}  # copy id -> canonical id

    @classmethod
    def for_records(cls, path: Path, records: Sequence[ChunkRecord]) -> SyndicationIndex:
        """The index of the articles in `records` (Chroma's chunks): persisted signatures where
        they match, signatures made again from the chunk texts where not, saved if it changed."""
        index = cls(path)
        wanted: dict[str, str] = {}
        for record in records:
            meta = record.metadata
            article_id = str(meta.get("article_id", ""))
            index._chunks.setdefault(article_id, []).append(record)
            if article_id in wanted:
                continue
            wanted[article_id] = content_hash_of(str(meta.get("article_hash", "")))
            copies = copies_of(meta)
            if copies:
                index.copies[article_id] = copies
                for copy in copies:
                    index.copy_owner[copy.id] = article_id
        saved = index._load()
        missing = {aid for aid, h in wanted.items() if saved.get(aid, ("",))[0] != h}
        bodies = bodies_from_chunks(r for r in records if r.metadata.get("article_id") in missing)
        for article_id, content in wanted.items():
            if article_id in missing:
                minhash = signature(bodies.get(article_id, ("", ""))[1])
            else:
                minhash = saved[article_id][1]
            index._put(article_id, content, minhash)
        if missing or len(saved) != len(wanted):
            index.save()
        return index

    def _put(self, article_id: str, content_hash: str, minhash: MinHash) -> None:
        if article_id in self._signatures:
            self._lsh.remove(article_id)
        self._signatures[article_id] = (content_hash, minhash)
        self._lsh.insert(article_id, minhash)

    def add(self, article_id: str, content_hash: str, body: str, minhash: MinHash) -> None:
        """Keep a (new or changed) canonical article's signature."""
        self._put(article_id, content_hash, minhash)
        self._bodies[article_id] = body
        self._chunks.pop(article_id, None)

    def content_hash(self, article_id: str) -> str | None:
        """A stored article's own content hash; None when it is not stored."""
        found = self._signatures.get(article_id)
        return found[0] if found else None

    def _body(self, article_id: str) -> str:
        if article_id not in self._bodies:
            chunks = self._chunks.get(article_id, [])
            self._bodies[article_id] = bodies_from_chunks(chunks).get(article_id, ("", ""))[1]
        return self._bodies[article_id]

    def discard(self, article_id: str) -> None:
        """Forget a canonical article (deleted), and the copies recorded on it."""
        if self._signatures.pop(article_id, None) is not None:
            self._lsh.remove(article_id)
        self._bodies.pop(article_id, None)
        self._chunks.pop(article_id, None)
        for copy in self.copies.pop(article_id, []):
            self.copy_owner.pop(copy.id, None)

    def original_of(
        self, body: str, minhash: MinHash, *, exclude: str = ""
    ) -> tuple[str, float] | None:
        """The stored article this body copies (the most similar above the threshold), with the
        Jaccard similarity of their shingles."""
        best: tuple[str, float] | None = None
        mine = shingles(body)
        for candidate in self._lsh.query(minhash):
            if candidate == exclude:
                continue
            theirs = shingles(self._body(str(candidate)))
            score = len(mine & theirs) / len(mine | theirs) if mine and theirs else 0.0
            if score >= self.threshold and (best is None or score > best[1]):
                best = (str(candidate), score)
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

    def _load(self) -> dict[str, tuple[str, MinHash]]:
        """The saved signatures; empty when there is no usable file (it is rebuilt)."""
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if (
                    int(data["version"]) != _FILE_VERSION
                    or int(data["num_perm"]) != NUM_PERM
                    or str(data["scheme"]) != _SCHEME
                ):
                    return {}
                ids, hashes, values = data["ids"], data["hashes"], data["values"]
                if len(ids) != len(hashes) or values.shape != (len(ids), NUM_PERM):
                    raise ValueError("arrays of different lengths")
                return {
                    str(i): (str(h), MinHash(num_perm=NUM_PERM, hashvalues=v, **_FROM_VALUES))
                    for i, h, v in zip(ids, hashes, values, strict=True)
                }
        except FileNotFoundError:
            return {}
        except Exception as error:  # derived data that fails to load is made again, whatever
            log.info("syndication signatures at %s not usable (%s); rebuilding", self.path, error)
            return {}

    def save(self) -> None:
        """Persist the signatures atomically; a failure only costs a rebuild later."""
        ids = sorted(self._signatures)
        values = np.zeros((len(ids), NUM_PERM), dtype=np.uint64)
        for row, article_id in enumerate(ids):
            values[row] = self._signatures[article_id][1].hashvalues
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as out:
                np.savez(
                    out,
                    version=np.int64(_FILE_VERSION),
                    num_perm=np.int64(NUM_PERM),
                    scheme=np.array(_SCHEME),
                    ids=np.array(ids, dtype=str),
                    hashes=np.array([self._signatures[i][0] for i in ids], dtype=str),
                    values=values,
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except OSError as error:
            log.warning("could not save syndication signatures to %s: %s", self.path, error)


def signatures_path(keyword_dir: Path, collection: str) -> Path:
    """Where a collection's signatures live: beside its keyword index."""
    return keyword_dir / f"{collection}.minhash.npz"
