"""The BM25 keyword index: derived from Chroma's chunks, persisted, rebuilt on change."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w[\w'’.-]*\w|\w", re.UNICODE)
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    said says say also s t
    """.split()
)
_stemmer = Stemmer.Stemmer("english")


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed words without stopwords; dotted abbreviations lose their dots."""
    words = (w.replace(".", "").replace("’", "'").removesuffix("'s") for w in _WORD.findall(text))
    kept = [w for w in (w.lower() for w in words) if w and w not in STOPWORDS]
    return list(_stemmer.stemWords(kept))


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """What the keyword side keeps of a chunk: its id, text and metadata."""

    id: str
    text: str
    metadata: dict[str, Any]


def fingerprint(ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> str:
    """Names one state of the collection: which chunks, of which article versions."""
    digest = hashlib.sha1()
    for chunk_id, meta in sorted(zip(ids, metadatas, strict=True)):
        digest.update(f"{chunk_id}\x1f{meta.get('article_hash', '')}\x1e".encode())
    return digest.hexdigest()


def keyword_text(record: ChunkRecord) -> str:
    meta = record.metadata
    return f"{meta.get('title', '')}\n{meta.get('source', '')}\n{record.text}"


class KeywordIndex:
    """BM25 over every chunk (title + outlet + text), with the chunks kept in memory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fingerprint = ""
        self.records: list[ChunkRecord] = []
        self._row: dict[str, int] = {}
        self._bm25: bm25s.BM25 | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.records)

    def row_of(self, chunk_id: str) -> int | None:
        return self._row.get(chunk_id)

    def rebuild(self, records: list[ChunkRecord], state: str) -> None:
        """Index `records` as the state named `state`, and persist it."""
        bm25 = None
        if records:
            bm25 = bm25s.BM25()
            bm25.index([keyword_tokens(keyword_text(r)) for r in records], show_progress=False)
        with self._lock:
            self.records, self._bm25, self.fingerprint = records, bm25, state
            self._row = {r.id: i for i, r in enumerate(records)}
        self._save()

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every record for `query` (zeros where nothing matches)."""
        with self._lock:
            bm25, size = self._bm25, len(self.records)
        tokens = keyword_tokens(query)
        if bm25 is None or not tokens:
            return np.zeros(size, dtype=np.float32)
        return np.asarray(bm25.get_scores(tokens), dtype=np.float32)

    def _save(self) -> None:
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"), show_progress=False)
        with (tmp / "records.jsonl").open("w", encoding="utf-8") as out:
            for r in self.records:
                out.write(json.dumps([r.id, r.text, r.metadata], ensure_ascii=False) + "\n")
        (tmp / "state.json").write_text(json.dumps({"fingerprint": self.fingerprint}))
        # Replace the old folder only once the new one is whole.
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)
        shutil.rmtree(old, ignore_errors=True)

    def load_persisted(self, expected: str) -> bool:
        """Load the saved index if it was built from the state `expected`."""
        try:
            state = json.loads((self.directory / "state.json").read_text())
            if state.get("fingerprint") != expected:
                return False
            with (self.directory / "records.jsonl").open(encoding="utf-8") as lines:
                records = [ChunkRecord(*json.loads(line)) for line in lines]
            bm25 = None
            if records:
                bm25 = bm25s.BM25.load(str(self.directory / "bm25"), show_progress=False)
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.info("keyword index at %s not usable (%s); rebuilding", self.directory, error)
            return False
        with self._lock:
            self.records, self._bm25, self.fingerprint = records, bm25, expected
            self._row = {r.id: i for i, r in enumerate(records)}
        return True
