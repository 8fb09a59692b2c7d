"""One state of the keyword index: its segments, which of their chunks are live, and the rows
and fingerprint that follow. Searches read a state; a change makes a new one beside it."""

from __future__ import annotations

import itertools
import os
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.keyword_segments import VECTORS, Segment, bm25_idf, bm25_tf, chunk_hash, fingerprint_hex
from index.keyword_text import ChunkRecord, keyword_tokens
from index.segment_vectors import read_ahead

# A state's remembered term scores: 12 bytes a posting, so 22M postings (at 1M chunks, the
# common terms of about 60 dev questions: search p50 196 ms with 64 MB, 149 ms with this).
SCORED_BYTES_KEPT = 256 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class _State:
    """One state of the index; searches read a state, a change makes a new one."""

    segments: tuple[Segment, ...]
    alive: tuple[np.ndarray, ...]  # per segment: which of its chunks are live
    global_of: tuple[np.ndarray, ...]  # per segment: each chunk's row among the live, or -1
    records: list[ChunkRecord]  # the live chunks, in row order
    total_length: int
    value: int  # the fingerprint
    state_id: str
    generation: str | None  # the Chroma generation it was made for
    # term -> term_scores(term), up to SCORED_BYTES_KEPT of arrays, the least recently used
    # forgotten first; a new state starts empty.
    _scored: dict[str, _Term] = field(default_factory=dict, init=False, repr=False)
    _scored_bytes: list[int] = field(default_factory=lambda: [0], init=False, repr=False)
    _scored_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # Segment s -> its live rows (made when first asked, for a segment not all live).
    _live: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def make(
        cls,
        segments: Sequence[Segment],
        alive: Sequence[np.ndarray],
        value: int,
        state_id: str,
        generation: str | None,
    ) -> _State:
        global_of: list[np.ndarray] = []
        records: list[ChunkRecord] = []
        offset = total = 0
        for segment, live in zip(segments, alive, strict=True):
            global_of.append(np.where(live, offset + np.cumsum(live) - 1, -1))
            offset += int(live.sum())
            total += int(segment.lengths[live].sum())
            records.extend(r for r, ok in zip(segment.records, live.tolist(), strict=True) if ok)
        return cls(
            tuple(segments), tuple(alive), tuple(global_of), records, total, value, state_id,
            generation,
        )  # fmt: skip

    @property
    def fingerprint(self) -> str:
        return fingerprint_hex(self.value)

    @classmethod
    def of(cls, segments: Sequence[Segment], state_id: str, generation: str | None) -> _State:
        """A state of these segments as they are on disk (later ones supersede earlier ones)."""
        seen: set[str] = set()
        alive: list[np.ndarray] = []
        for segment in reversed(segments):
            ids = [r.id for r in segment.records]
            live = np.array([i not in seen for i in ids], dtype=bool) if seen else None
            alive.append(np.ones(len(ids), dtype=bool) if live is None else live)
            seen.update(ids)
            seen.update(segment.deletes)
        alive.reverse()
        value = 0
        for segment, live in zip(segments, alive, strict=True):
            value += segment.hash_total()  # less the chunks a later segment supersedes
            dead = [segment.records[i] for i in np.flatnonzero(~live).tolist()]
            value -= sum(chunk_hash(r.id, r.metadata) for r in dead)
        return cls.make(segments, alive, value, state_id, generation)

    def column(self, key: str) -> list[Any]:
        """Every live chunk's metadata value for `key` (None where it has none), in row order:
        read from the segments' columns, no metadata dict made."""
        out: list[Any] = []
        for segment, live in zip(self.segments, self.alive, strict=True):
            values = segment.column(key)
            out.extend(values if live.all() else itertools.compress(values, live.tolist()))
        return out

    def vectors(self, rows: Sequence[int]) -> dict[int, np.ndarray]:
        """The saved vectors of these live rows, where their segment holds them (see
        index.segment_vectors); rows of a segment without them are left out."""
        wanted = np.asarray(rows, dtype=np.int64)
        ends = np.cumsum([np.count_nonzero(live) for live in self.alive])  # rows follow on
        segment_of = np.searchsorted(ends, wanted, side="right")
        out: dict[int, np.ndarray] = {}
        for s in np.unique(segment_of).tolist():
            if s >= len(self.segments) or self.segments[s].vectors is None:
                continue
            picked = wanted[segment_of == s]
            local = picked - (int(ends[s - 1]) if s else 0)
            if not self.alive[s].all():
                local = self._live_rows(s)[local]
            vectors = self.segments[s].vectors
            assert vectors is not None
            out.update(zip(picked.tolist(), vectors.take(local), strict=True))
        return out

    def read_ahead(self, available: int | None = None, *, upto: int = VECTORS) -> int:
        """Read the segments' files into the page cache, the vectors and, with `upto`, their
        postings (POSTINGS) and records (RECORDS) after them; as many as fit in half of
        `available` bytes (the machine's available memory if None). How many bytes were read.

        The vectors stand in for those Chroma holds in memory: read cold, a search's 640 took
        100-120 ms at 1M chunks. Postings and records were read from the disk by a search
        before they were here too; reading them all ahead (3.7 GB at 1M) took the start to
        first answer from a cold cache to 23 s. The page cache is the kernel's, shared and
        given back under pressure, not the process's memory."""
        budget = (available_memory() if available is None else available) // 2
        files = sorted(
            (f for segment in self.segments for f in segment.files() if f[0] <= upto),
            key=lambda f: f[0],
        )
        done = 0
        for _, file in files:
            try:
                size = os.stat(file).st_size
                if done + size <= budget:
                    read_ahead(file)
                    done += size
            except OSError:  # a file gone since (a folder swapped): only the cache is lost
                continue
        return done

    def _live_rows(self, s: int) -> np.ndarray:
        """Segment `s`'s live rows (its k-th live chunk is at the k-th), made once."""
        with self._scored_lock:
            found = self._live.get(s)
        if found is None:
            found = np.flatnonzero(self.alive[s])
            with self._scored_lock:
                self._live[s] = found
        return found

    def replaced(self, at: int, segment: Segment) -> _State:
        segments = [*self.segments]
        segments[at] = segment
        return _State.make(segments, self.alive, self.value, self.state_id, self.generation)

    def live_postings(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(live rows, term counts, chunk lengths) of the chunks holding `term`."""
        rows, tfs, lengths = [], [], []
        for segment, global_of in zip(self.segments, self.global_of, strict=True):
            found = segment.postings(term)
            if found is None:
                continue
            local, tf = found
            if global_of.size and 0 <= global_of[0] == global_of[-1] - global_of.size + 1:
                rows.append(local + global_of[0])  # every chunk of the segment is live
                tfs.append(tf)
                lengths.append(segment.lengths[local])
                continue
            where = global_of[local]
            keep = where >= 0
            rows.append(where[keep])
            tfs.append(tf[keep])
            lengths.append(segment.lengths[local[keep]])
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.astype(np.float32), empty.astype(np.int32)
        return np.concatenate(rows), np.concatenate(tfs), np.concatenate(lengths)

    def term_scores(self, term: str) -> _Term:
        """`term`'s live rows (ascending), BM25 term-frequency parts and idf in this state,
        remembered: a question's probes share most of their terms, questions common ones."""
        with self._scored_lock:
            found = self._scored.pop(term, None)
            if found is not None:
                self._scored[term] = found  # the most recently used: last to be forgotten
                return found
        rows, tfs, lengths = self.live_postings(term)
        n = len(self.records)
        if n < 2**31:
            rows = rows.astype(np.int32)  # a third less to keep; rows looked up are cast
        if rows.size:
            tf_part = bm25_tf(tfs, lengths, self.total_length / n)
            found = _Term(rows, tf_part, bm25_idf(n, rows.size), float(tf_part.max()))
        else:
            found = _Term(rows, tfs.astype(np.float64), 0.0, 0.0)
        size = found.rows.nbytes + found.tf_part.nbytes
        with self._scored_lock:
            kept = self._scored
            while kept and self._scored_bytes[0] + size > SCORED_BYTES_KEPT:
                old = kept.pop(next(iter(kept)))
                self._scored_bytes[0] -= old.rows.nbytes + old.tf_part.nbytes
            if term not in kept and size <= SCORED_BYTES_KEPT:
                kept[term] = found
                self._scored_bytes[0] += size
        return found

    def weighted_terms(self, query: str) -> list[tuple[_Term, float]]:
        """Each term of `query` that some live chunk holds, with its weight (times in the
        query x idf), in the query's order: the order every score here adds them in."""
        if not self.records:
            return []
        out = []
        for term, times in Counter(keyword_tokens(query)).items():
            found = self.term_scores(term)
            if found.rows.size:
                out.append((found, times * found.idf))
        return out

    def top_scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25 scores) of the chunks that match `query`, rows ascending: from the
        postings of its terms alone, with the statistics of all live chunks."""
        rows, scores = _summed(self.weighted_terms(query), len(self.records))
        return rows, scores.astype(np.float32)

    def scores_at(self, query: str, rows: np.ndarray) -> np.ndarray:
        """BM25 scores of `query` at `rows` (0 where a row holds none of its terms): looked up
        in each term's postings, no chunk scored beyond those asked about."""
        return _looked_up(self.weighted_terms(query), rows).astype(np.float32)

    def top_rows(self, query: str, k: int, allowed: np.ndarray) -> np.ndarray:
        """The rows of the `k` best BM25 chunks for `query` within `allowed`, best first;
        the same as ranking `top_scores` (but for ties at the k-th score), without scoring
        every chunk that holds a common term (MaxScore, see `_top_rows`)."""
        return _top_rows(self.weighted_terms(query), len(self.records), k, allowed)


@dataclass(frozen=True)
class _Term:
    """A term's live postings in a state: rows ascending, BM25 term-frequency parts."""

    rows: np.ndarray
    tf_part: np.ndarray
    idf: float
    top: float  # the largest tf_part: no chunk gets more from this term than idf x top


# Postings walked in full: a query with fewer is scored whole; else its rarer terms up to this
# many, or a twentieth of the chunks if more (MultiHop-RAG dev probes on the 500k and 1M
# archives: 20k best at 500k, 50k at 1M; 5k, 100k and 200k slower).
EXHAUSTIVE_POSTINGS = 20_000
WALKED_SHARE = 20
# Relative: scores summed in another order differ in their last bits, and a chunk tied with
# the k-th best keeps its chance at the place, as when every chunk is scored.
_SLACK = 1e-9


def _summed(terms: Sequence[tuple[_Term, float]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows ascending, float64 scores) of every chunk holding one of `terms`."""
    if not terms:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    rows = np.concatenate([t.rows for t, _ in terms])
    scores = np.concatenate([weight * t.tf_part for t, weight in terms])
    if 16 * rows.size > n:  # common terms: a sum per chunk beats a sort of the postings
        summed = np.bincount(rows, weights=scores, minlength=n)
        unique = np.flatnonzero(summed > 0)  # scores are positive; a bool scan is 5x faster
        return unique, summed[unique]
    order = np.argsort(rows, kind="stable")
    rows, scores = rows[order], scores[order]
    starts = np.flatnonzero(np.diff(rows, prepend=-1))  # sorted: each row's run starts here
    return rows[starts], np.add.reduceat(scores, starts)


def _looked_up(terms: Sequence[tuple[_Term, float]], rows: np.ndarray) -> np.ndarray:
    """float64 scores at `rows`, each term's part added in `terms`' order (as `_summed`)."""
    out = np.zeros(rows.size, dtype=np.float64)
    for term, weight in terms:
        out += _part_at(term, weight, rows)
    return out


def _part_at(term: _Term, weight: float, rows: np.ndarray) -> np.ndarray:
    """What `term` adds to the score of each of `rows` (ascending): 0 where it is absent."""
    out = np.zeros(rows.size, dtype=np.float64)
    if rows.size:
        rows = rows.astype(term.rows.dtype, copy=False)  # else searchsorted casts the postings
        at = np.minimum(np.searchsorted(term.rows, rows), term.rows.size - 1)
        hit = term.rows[at] == rows
        out[hit] = weight * term.tf_part[at[hit]]
    return out


def _best(rows: np.ndarray, scores: np.ndarray, allowed: np.ndarray | None, k: int) -> np.ndarray:
    """The `k` best-scoring of `rows` (ascending) within `allowed`, best first."""
    rows, scores = _within(rows, scores, allowed)
    scores = scores.astype(np.float32)  # ranked as the scores are given out
    keep = scores > 0
    rows, scores = rows[keep], scores[keep]
    if rows.size == 0:
        return rows
    k = min(k, rows.size)
    part = np.argpartition(-scores, k - 1)[:k]
    return rows[part[np.argsort(-scores[part], kind="stable")]]


def _within(
    rows: np.ndarray, scores: np.ndarray, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The rows (and their scores) that `allowed` admits; None: every row."""
    if allowed is None:
        return rows, scores
    keep = rows < allowed.size
    keep[keep] &= allowed[rows[keep]]
    return rows[keep], scores[keep]


def _top_rows(terms: list[tuple[_Term, float]], n: int, k: int, allowed: np.ndarray) -> np.ndarray:
    """MaxScore. The postings of the query's rarer terms are walked and summed; the k-th
    best of those partial scores is a bar that the top k reach. The commonest terms, whose
    largest possible parts together stay under the bar, are never walked: a chunk holding
    only them cannot reach it. They are looked up at the chunks that could still reach the
    bar with them, term by term, dropping those that no longer can."""
    budget = max(EXHAUSTIVE_POSTINGS, n // WALKED_SHARE)
    if sum(t.rows.size for t, _ in terms) <= budget:
        return _best(*_summed(terms, n), allowed, k)
    admits: np.ndarray | None = None if allowed.size >= n and allowed.all() else allowed
    bound = [weight * t.top for t, weight in terms]
    walked: list[int] = []
    postings = 0
    for i in sorted(range(len(terms)), key=lambda i: terms[i][0].rows.size):
        if walked and postings + terms[i][0].rows.size > budget:
            break
        walked.append(i)
        postings += terms[i][0].rows.size
    rows, partial = _within(*_summed([terms[i] for i in sorted(walked)], n), admits)
    bar = _kth(partial, k)
    skipped: list[int] = []
    below = 0.0
    rare = len(walked)
    for i in sorted(set(range(len(terms))) - set(walked), key=lambda i: bound[i]):
        if below + bound[i] < bar - _SLACK * bar:
            skipped.append(i)
            below += bound[i]
        else:
            walked.append(i)  # and every term after it: their bounds are larger
    if len(walked) > rare:
        rows, partial = _within(*_summed([terms[i] for i in sorted(walked)], n), admits)
        bar = max(bar, _kth(partial, k))
    reach = partial + below >= bar - _SLACK * bar  # sums in another order may differ a little
    rows, partial = rows[reach], partial[reach]
    for i in sorted(skipped, key=lambda i: -bound[i]):
        partial = partial + _part_at(*terms[i], rows)
        below -= bound[i]
        bar = max(bar, _kth(partial, k))
        reach = partial + below >= bar - _SLACK * bar
        rows, partial = rows[reach], partial[reach]
    return _best(rows, partial, admits, k)


def _kth(scores: np.ndarray, k: int) -> float:
    """The k-th best of `scores` (0 when there are fewer than k). Of many, a sixteenth's k-th
    best is a floor that every one of the k best reaches: only those over it are partitioned
    (a search's bars at 1M chunks: 16 ms before, 5x less)."""
    if scores.size < k:
        return 0.0
    if scores.size >= 32 * k:
        scores = scores[scores >= _kth(scores[::16], k)]
    return float(np.partition(scores, scores.size - k)[scores.size - k])


_EMPTY = _State.make([], [], 0, "", None)


def available_memory() -> int:
    """Bytes of memory the kernel could give without swapping (MemAvailable), 0 if unknown."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
