"""Keeping a store's keyword index in step with Chroma.

Writes through the pipeline change the index by deltas (`write_op`): the writer knows what it
wrote, indexes only that, saves it as a delta segment and names the result with the Chroma
generation it then gives the collection. A reader that finds the saved manifest naming
Chroma's current generation reads the new deltas alone. Anything else (a writer that died
half-way, a write outside the pipeline, a keyword folder of another machine) falls back to a
full check of Chroma's metadata and, if it differs, a rebuild."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from index.keyword_text import ChunkRecord
    from index.store import ChunkStore

log = logging.getLogger(__name__)


def sync(store: ChunkStore, *, force: bool = False) -> bool:
    """Bring the keyword index in step with Chroma; True if it changed.

    Every `keyword_sync_seconds` one thread asks Chroma for the collection's generation (and
    `force` asks now): the others wait for that answer (seconds at most while the store hangs,
    after which the open breaker fails them all at once). Bringing the index along is another
    matter: one thread does it, and the others go on with the state they have, never waiting
    for it, unless there is none yet."""
    keyword = store.keyword
    with store._sync_lock:
        now = time.monotonic()
        if not force and now - store._synced_at < store.settings.keyword_sync_seconds:
            return False
        generation = store.generation()
        store._synced_at = now
        if not force and generation == store._seen_generation and keyword.loaded:
            return False
        if store._op_depth:
            return False  # this process is writing: its commit brings the index along
    if not store._maintain_lock.acquire(blocking=force or not keyword.loaded):
        return False
    try:
        return _follow(store, generation)
    finally:
        store._maintain_lock.release()


def _follow(store: ChunkStore, generation: str | None) -> bool:
    keyword = store.keyword
    manifest = keyword.read_manifest()
    if manifest is not None and generation is not None:
        if manifest.get("chroma_generation") == generation:
            try:
                changed = keyword.follow(manifest)
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.info("keyword index at %s not usable (%s)", keyword.directory, error)
            else:
                store._seen_generation = generation
                return changed
        elif writer_active(store):
            return False  # a write is under way: look again at the next sync
    state = store.chroma_fingerprint()
    if keyword.loaded and state == keyword.fingerprint:
        keyword.stamp(generation)
        store._seen_generation = generation
        return False
    loaded = manifest is not None and manifest.get("fingerprint") == state
    if loaded and keyword.load_persisted(state):
        keyword.stamp(generation)
        store._seen_generation = generation
        return True
    _rebuild(store, generation)
    return True


def rebuild(store: ChunkStore) -> None:
    """Index Chroma's chunks anew, whatever the persisted keyword index holds."""
    with store._maintain_lock:
        _rebuild(store, store.generation())
        store._synced_at = time.monotonic()


def _rebuild(store: ChunkStore, generation: str | None) -> None:
    store.keyword.rebuild(store.all_records(), generation=generation)
    store._seen_generation = generation
    store.keyword.add_vectors(store.embeddings)  # then searches read them from disk


def _writer_path(store: ChunkStore) -> Any:
    folder = store.settings.keyword_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{store.settings.collection}.writer"


def writer_active(store: ChunkStore) -> bool:
    """Whether a process writes through this keyword folder now (the kernel drops the lock of
    one that dies)."""
    try:
        with _writer_path(store).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


@contextlib.contextmanager
def write_op(store: ChunkStore) -> Iterator[None]:
    """One write to Chroma, marked with a new generation before and after. Under
    `ChunkStore.incremental_keyword`, with the index in step when it starts, what it wrote
    goes into the keyword index as a delta, saved before the final generation names it."""
    if store._op_depth:  # inside another write: that one marks and commits
        store._op_depth += 1
        try:
            yield
        finally:
            store._op_depth -= 1
        return
    keyword = store.keyword
    tracking = store._tracking
    in_step = tracking and keyword.loaded and store.generation() == keyword.generation
    with contextlib.ExitStack() as stack:
        if tracking:
            handle = stack.enter_context(_writer_path(store).open("a"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        store._changes = {}
        store._op_depth = 1
        try:
            store.begin_writes()
            yield
            if in_step:
                _commit(store, store._changes)
            else:
                store._mark_changed()
        finally:
            store._op_depth = 0
            store._changes = None


def _commit(store: ChunkStore, changes: dict[str, Any]) -> None:
    generation = uuid.uuid4().hex
    upserts = [r for r in changes.values() if r is not None]
    deletes = [chunk_id for chunk_id, r in changes.items() if r is None]
    saved = store.keyword.apply(upserts, deletes, generation, _vectors_of(store, upserts))
    if not saved:  # another writer saved meanwhile: leave it to the readers' full check
        generation = uuid.uuid4().hex
    store._set_generation(generation)
    store._seen_generation = generation if saved else None


def _vectors_of(store: ChunkStore, records: list[ChunkRecord]) -> np.ndarray | None:
    """The vectors of these chunks, in order, for the delta: read back from Chroma, which
    keeps them as it normalised them (within 1e-8 of what was written), so that a search
    scores with exactly the vectors its HNSW index holds; 1 ms for an article's chunks. None
    if Chroma has none for some chunk."""
    if not records:
        return None
    found = store.embeddings([r.id for r in records])
    if any(r.id not in found for r in records):
        return None
    return np.stack([found[r.id] for r in records]).astype(np.float32, copy=False)
