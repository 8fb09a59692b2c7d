"""One state of the keyword index: its segments, which of their chunks are live, and the rows
and fingerprint that follow. Searches read a state; a change makes a new one beside it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.keyword_segments import Segment, chunk_hash, fingerprint_hex
from index.keyword_text import ChunkRecord

MAX_DELTAS = 8  # merge when more delta segments than this sit on the main one ...
DELTA_SHARE = 0.1  # ... or when they hold more chunks than this share of the main one


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

    def needs_merge(self) -> bool:
        deltas = self.segments[1:]
        return len(deltas) > MAX_DELTAS or sum(map(len, deltas)) > DELTA_SHARE * max(
            len(self.segments[0]) if self.segments else 0, 1
        )


_EMPTY = _State.make([], [], 0, "", None)
