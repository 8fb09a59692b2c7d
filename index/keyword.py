"""The BM25 keyword index: derived from Chroma's chunks, persisted, rebuilt on change."""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
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
        self._sorted_terms: tuple[Any, list[str]] | None = None  # (model, its tokens)

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

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25's (Lucene) inverse document frequency of each known term, over the chunks."""
        with self._lock:
            bm25 = self._bm25
        if bm25 is None:
            return {}
        indptr, documents = bm25.scores["indptr"], int(bm25.scores["num_docs"])
        out = {}
        for term in set(terms):
            column = bm25.vocab_dict.get(term)
            if column is not None and column + 1 < len(indptr):
                frequency = int(indptr[column + 1] - indptr[column])
                out[term] = math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))
        return out

    def chunks_with(self, term: str) -> np.ndarray:
        """Rows of the chunks holding `term` (a token of `keyword_tokens`), sorted: one
        dictionary look-up and a slice of the BM25 postings, no scan."""
        with self._lock:
            bm25 = self._bm25
        column = bm25.vocab_dict.get(term) if bm25 is not None else None
        if bm25 is None or column is None or column + 1 >= len(bm25.scores["indptr"]):
            return np.zeros(0, dtype=np.int64)
        indptr = bm25.scores["indptr"]
        rows = bm25.scores["indices"][indptr[column] : indptr[column + 1]]
        return np.unique(np.asarray(rows, dtype=np.int64))

    def has_prefix(self, prefix: str) -> bool:
        """Whether some indexed token starts with `prefix` (a bisection of the sorted tokens)."""
        with self._lock:
            bm25, cached = self._bm25, self._sorted_terms
        if bm25 is None:
            return False
        if cached is None or cached[0] is not bm25:
            cached = (bm25, sorted(bm25.vocab_dict))
            with self._lock:
                self._sorted_terms = cached
        terms = cached[1]
        at = bisect.bisect_left(terms, prefix)
        return at < len(terms) and terms[at].startswith(prefix)

    def chunks_with_all(self, text: str) -> np.ndarray:
        """Rows of the chunks holding every keyword token of `text` (empty when it has none)."""
        rows: np.ndarray | None = None
        for term in dict.fromkeys(keyword_tokens(text)):
            found = self.chunks_with(term)
            rows = found if rows is None else np.intersect1d(rows, found, assume_unique=True)
            if not rows.size:
                break
        return rows if rows is not None else np.zeros(0, dtype=np.int64)

    def _save(self) -> None:
        """Persist the index; a failure only costs a rebuild in the next process."""
        try:
            with self._folder_lock(fcntl.LOCK_EX):
                self._write_folder()
        except OSError as error:
            log.warning("could not save the keyword index to %s: %s", self.directory, error)

    @contextlib.contextmanager
    def _folder_lock(self, mode: int) -> Iterator[None]:
        """Several processes may save and load one folder: one writer at a time, and no
        reader sees a folder half swapped."""
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.directory.with_name(self.directory.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, mode)
            yield

    def _write_folder(self) -> None:
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"), show_progress=False)
        with (tmp / "records.jsonl").open("w", encoding="utf-8") as out:
            for r in self.records:
                out.write(json.dumps([r.id, r.text, r.metadata], ensure_ascii=False) + "\n")
        state = {"fingerprint": self.fingerprint, "records": len(self.records)}
        (tmp / "state.json").write_text(json.dumps(state))
        _sync_tree(tmp)
        # Replace the old folder only once the new one is whole and on disk. A crash between
        # the two renames leaves no folder, which the next process rebuilds from Chroma.
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)
        _sync_dir(self.directory.parent)
        shutil.rmtree(old, ignore_errors=True)

    def load_persisted(self, expected: str) -> bool:
        """Load the saved index if it was built from the state `expected` and is whole."""
        try:
            with self._folder_lock(fcntl.LOCK_SH):
                records, bm25 = self._read_folder(expected)
        except Exception as error:  # a derived index that fails to load is rebuilt, whatever
            log.info("keyword index at %s not usable (%s); rebuilding", self.directory, error)
            return False
        with self._lock:
            self.records, self._bm25, self.fingerprint = records, bm25, expected
            self._row = {r.id: i for i, r in enumerate(records)}
        return True

    def _read_folder(self, expected: str) -> tuple[list[ChunkRecord], bm25s.BM25 | None]:
        """The saved records and BM25 model; raises ValueError unless they are the state
        `expected`, complete (a folder cut short by a crash or a full disk fails here)."""
        state = json.loads((self.directory / "state.json").read_text())
        if state.get("fingerprint") != expected:
            raise ValueError("built from another state of the collection")
        with (self.directory / "records.jsonl").open(encoding="utf-8") as lines:
            records = [ChunkRecord(*json.loads(line)) for line in lines]
        if len(records) != state.get("records", len(records)):
            raise ValueError(f"{len(records)} records, {state['records']} saved")
        if fingerprint([r.id for r in records], [r.metadata for r in records]) != expected:
            raise ValueError("records do not match their fingerprint")
        bm25 = None
        if records:
            bm25 = bm25s.BM25.load(str(self.directory / "bm25"), show_progress=False)
            if int(getattr(bm25, "scores", {}).get("num_docs", len(records))) != len(records):
                raise ValueError("the BM25 model does not match the records")
        return records, bm25

    def saved_fingerprint(self) -> str | None:
        """The state the saved folder was built from; None when there is none to read."""
        try:
            with self._folder_lock(fcntl.LOCK_SH):
                state = json.loads((self.directory / "state.json").read_text())
            return str(state["fingerprint"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def check_persisted(self, expected: str) -> str | None:
        """Why the saved folder cannot serve as the state `expected`, or None when it can."""
        try:
            with self._folder_lock(fcntl.LOCK_SH):
                self._read_folder(expected)
        except FileNotFoundError as error:
            return f"missing ({Path(error.filename or self.directory).name})"
        except Exception as error:
            return str(error) or type(error).__name__
        return None


def _sync_tree(folder: Path) -> None:
    """fsync every file under `folder`, and the folders, so a power cut keeps them whole."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        _sync_dir(path)


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
