"""When and how the keyword index folds its segments together, off the write path.

A write adds a small delta segment and is searchable once that is saved. Merging is another
thread's business: size-tiered, as in Lucene and LSM stores, so that each chunk is merged a
few times at most rather than once per write:
- TIER_FACTOR deltas of like size (the same power of TIER_FACTOR in chunks) at the top merge
  into one, which may then join the tier above it;
- once the deltas hold more than DELTA_SHARE of the main segment, all of them merge into it.
A merge reads one state, builds its segment while writes go on, and is then fitted into the
state of that moment (`rebased`): what the writes since deleted or replaced stays dead."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from index.keyword_segments import Segment, merge
from index.keyword_state import _State

TIER_FACTOR = 4  # deltas merge in fours of like size ...
MAX_DELTAS = 32  # ... and all of them once there are more than this
DELTA_SHARE = 0.1  # into the main segment once they hold more chunks than this share of it


def _tier(size: int) -> int:
    return int(math.log(max(size, 1), TIER_FACTOR))


def next_merge(sizes: Sequence[int]) -> tuple[int, int] | None:
    """The segments (a range [start, end) of `sizes`, the main segment first) to merge next,
    or None when they are fine as they are."""
    deltas = sizes[1:]
    if not deltas:
        return None
    if sum(deltas) > DELTA_SHARE * max(sizes[0], 1):
        return 0, len(sizes)
    if len(deltas) > MAX_DELTAS:
        return 1, len(sizes)
    top = _tier(deltas[-1])
    run = 0
    for size in reversed(deltas):
        if _tier(size) > top:
            break
        run += 1
    return (len(sizes) - run, len(sizes)) if run >= TIER_FACTOR else None


def merged_range(state: _State, start: int, end: int) -> Segment:
    """The live chunks of segments [start, end) as one segment. Above the main segment it
    keeps their tombstones, which still remove chunks from the segments below it."""
    segment = merge(state.segments[start:end], state.alive[start:end])
    if start == 0:
        return segment
    deletes = dict.fromkeys(d for s in state.segments[start:end] for d in s.deletes)
    return Segment(
        segment.name, segment.records, segment.terms, segment.indptr, segment.rows,
        segment.tfs, segment.lengths, tuple(deletes),
    )  # fmt: skip


def rebased(
    current: _State, merged_from: _State, start: int, end: int, segment: Segment
) -> _State | None:
    """`current` with its segments [start, end) replaced by `segment`, their merge as they
    were in `merged_from`; None if `current` no longer holds those segments. A chunk of them
    that a later write removed stays dead in the merged segment."""
    old = merged_from.segments[start:end]
    if len(current.segments) < end or any(
        a is not b for a, b in zip(current.segments[start:end], old, strict=True)
    ):
        return None
    now, then = current.alive[start:end], merged_from.alive[start:end]
    live = np.concatenate([a[b] for a, b in zip(now, then, strict=True)])
    return _State.make(
        [*current.segments[:start], segment, *current.segments[end:]],
        [*current.alive[:start], live, *current.alive[end:]],
        current.value, current.state_id, current.generation,
    )  # fmt: skip


def rebased_places(
    places: dict[str, tuple[int, int]], state: _State, start: int, end: int
) -> dict[str, tuple[int, int]]:
    """The chunk id -> (segment, row) map of `state`, whose segment `start` is the merge of
    segments [start, end) of the state `places` was made for."""
    shift = end - start - 1
    out: dict[str, tuple[int, int]] = {}
    for chunk_id, (s, row) in places.items():
        if s < start:
            out[chunk_id] = (s, row)
        elif s >= end:
            out[chunk_id] = (s - shift, row)
    merged, live = state.segments[start], state.alive[start]
    for row in np.flatnonzero(live).tolist():
        out[merged.records[row].id] = (start, row)
    return out
