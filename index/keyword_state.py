"""One state of the keyword index: its segments, which of their chunks are live, and the rows
and fingerprint that follow. Searches read a state; a change makes a new one beside it."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.keyword_segments import Segment, bm25_idf, bm25_tf, chunk_hash, fingerprint_hex
from index.keyword_text import ChunkRecord, keyword_tokens


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

    def top_scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25 scores) of the chunks that match `query`, rows ascending: from the
        postings of its terms alone, with the statistics of all live chunks."""
        n = len(self.records)
        tokens = keyword_tokens(query)
        rows_parts, score_parts = [], []
        if n and tokens:
            average = self.total_length / n
            for term, times in Counter(tokens).items():
                rows, tfs, lengths = self.live_postings(term)
                if rows.size:
                    weight = times * bm25_idf(n, rows.size)
                    rows_parts.append(rows)
                    score_parts.append(weight * bm25_tf(tfs, lengths, average))
        if not rows_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        rows, scores = np.concatenate(rows_parts), np.concatenate(score_parts)
        if 16 * rows.size > n:  # common terms: a sum per chunk beats a sort of the postings
            summed = np.bincount(rows, weights=scores, minlength=n)
            unique = np.flatnonzero(summed)
            return unique, summed[unique].astype(np.float32)
        order = np.argsort(rows, kind="stable")
        rows, scores = rows[order], scores[order]
        unique, starts = np.unique(rows, return_index=True)
        return unique, np.add.reduceat(scores, starts).astype(np.float32)


_EMPTY = _State.make([], [], 0, "", None)
