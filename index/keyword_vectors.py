"""Giving a keyword index's saved segments their vectors files (see index.segment_vectors).

A segment made by a rebuild (from Chroma's texts and metadata) or saved before segments held
vectors has none: a search fetches its chunks' vectors from Chroma, 20-25 ms a search at 1M
chunks. `add_vectors` writes the file from Chroma's vectors, once; segments are immutable, so
the file stays right for as long as the segment lives, and merges carry it along."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from index.keyword_segments import Segment, sync_dir
from index.segment_vectors import FetchedVectors, SavedVectors, save_vectors, vectors_path

if TYPE_CHECKING:
    from index.keyword import KeywordIndex

log = logging.getLogger(__name__)


def add_vectors(index: KeywordIndex, fetch: Callable[[list[str]], dict[str, np.ndarray]]) -> int:
    """Write a vectors file for each saved segment of `index` that has none, from `fetch`
    (chunk ids -> vectors: Chroma's), and hold the segments with them. How many chunks got
    their vectors. A failure (a chunk without a vector, a full disk) is logged and leaves the
    segment as it was."""
    state = index.snapshot()
    done = 0
    for segment, live in zip(state.segments, state.alive, strict=True):
        if segment.vectors is None and live.any():
            ids = [
                r.id if ok else None for r, ok in zip(segment.records, live.tolist(), strict=True)
            ]
            done += _add(index, segment, ids, fetch)
    return done


def _add(
    index: KeywordIndex,
    segment: Segment,
    ids: list[str | None],
    fetch: Callable[[list[str]], dict[str, np.ndarray]],
) -> int:
    # Written beside the folder, which a merge may swap meanwhile, then moved in.
    tmp = index.directory.with_name(f"{index.directory.name}.vectors-{os.getpid()}-{segment.name}")
    try:
        first = next(i for i in ids if i is not None)
        dimensions = len(fetch([first])[first])
        save_vectors(tmp, FetchedVectors(ids, fetch, dimensions))
        with index._folder_lock(fcntl.LOCK_EX), index._update:
            saved = index.read_manifest() or {}
            if segment.name == saved.get("main_id", "main"):
                target = vectors_path(index.directory / "records.jsonl")
            elif segment.name in saved.get("segments", []):
                target = vectors_path(index.deltas / f"{segment.name}.jsonl")
            else:
                return 0  # merged or replaced meanwhile
            tmp.rename(target)
            sync_dir(target.parent)
            found = SavedVectors.open(target, len(segment))
            state = index.snapshot()
            at = next((i for i, s in enumerate(state.segments) if s is segment), None)
            if found is not None and at is not None:
                index._install(state.replaced(at, replace(segment, vectors=found)))
        return sum(i is not None for i in ids)
    except (OSError, KeyError) as error:  # searches ask Chroma for them, as before
        log.warning("could not save the vectors of keyword segment %s: %s", segment.name, error)
        return 0
    finally:
        tmp.unlink(missing_ok=True)
