"""The BM25 keyword index: derived from Chroma's chunks, persisted, kept in step by deltas.

On disk, `<collection>/` holds the main segment (`records.jsonl`, `postings.npz`) and the
manifest `state.json`; `<collection>.deltas/` holds the delta segments each write adds. The
manifest names the state (its fingerprint, an id, the Chroma generation it matches), the deltas
on top of the main segment, and a log of the recent deltas, so that a process holding an older
state reads only the deltas since. It is replaced atomically (a temporary file, fsync, rename):
a crash at any point leaves the previous manifest, and the state it names, whole."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.chroma_client import process_alive
from index.keyword_merge import (
    DELTA_SHARE,
    MAX_DELTAS,
    merged_range,
    next_merge,
    rebased,
    rebased_places,
)
from index.keyword_segments import (
    Segment,
    chunk_hash,
    fingerprint_hex,
    fingerprint_value,
    merge,
    replace_file,
    sync_dir,
    sync_tree,
)
from index.keyword_state import _EMPTY, _State
from index.keyword_text import STOPWORDS, ChunkRecord, keyword_text, keyword_tokens
from index.keyword_vectors import add_vectors

__all__ = [
    "DELTA_SHARE",
    "MAX_DELTAS",
    "STOPWORDS",
    "ChunkRecord",
    "KeywordIndex",
    "fingerprint",
    "keyword_text",
    "keyword_tokens",
]

log = logging.getLogger(__name__)

LOG_LENGTH = 64  # deltas kept for processes that follow


def fingerprint(ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> str:
    """Names one state of the collection: which chunks, of which article versions. A sum of a
    hash per chunk, so that a write moves it by what it changed alone."""
    return fingerprint_hex(fingerprint_value(ids, metadatas))


class KeywordIndex:
    """BM25 over every chunk (title + outlet + text); ids and metadata in memory, texts on disk.

    Readers take the current state and never wait: a change builds a new state beside it and
    swaps it in."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.deltas = directory.with_name(directory.name + ".deltas")
        self._state = _EMPTY
        self.loaded = False
        self._loc: dict[str, tuple[int, int]] = {}  # chunk id -> (segment, row): for changes
        self._update = threading.RLock()  # one change at a time
        self._saved_id: str | None = None  # the state of the last manifest read or written
        self._merger: threading.Thread | None = None

    # The current state --------------------------------------------------------------------

    @property
    def records(self) -> list[ChunkRecord]:
        return self._state.records

    @property
    def fingerprint(self) -> str:
        return fingerprint_hex(self._state.value) if self.loaded else ""

    @property
    def state_id(self) -> str:
        return self._state.state_id

    @property
    def generation(self) -> str | None:
        return self._state.generation

    @property
    def segment_count(self) -> int:
        return len(self._state.segments)

    def __len__(self) -> int:
        return len(self._state.records)

    def snapshot(self) -> _State:
        """The current state, whole: its records, fingerprint and columns agree."""
        return self._state

    def row_finder(self, state: _State) -> Callable[[str], int | None]:
        """Finds a chunk's row in `state` (None where it has none) by the id map this index
        keeps up to date anyway, rather than a map of its own for every state."""

        def row_of(chunk_id: str) -> int | None:
            place = self._loc.get(chunk_id)
            if place is None:
                return None
            segment, at = place
            # The map is the current state's: it holds for `state` where the chunk sits there
            # too, and for a state of the same content (merged since: the same rows).
            for held in (state, self._state):
                if held is not state and held.state_id != state.state_id:
                    continue
                segments = held.segments
                there = segment < len(segments) and at < len(segments[segment])
                if there and segments[segment].records[at].id == chunk_id:
                    row = int(held.global_of[segment][at])
                    return row if row >= 0 else None
            return None  # newer than `state`, or not yet in this index

        return row_of

    def _install(self, state: _State) -> None:
        self._state = state
        self.loaded = True

    def _reset_loc(self) -> None:
        self._loc = {
            r.id: (s, i)
            for s, (segment, live) in enumerate(
                zip(self._state.segments, self._state.alive, strict=True)
            )
            for i, (r, ok) in enumerate(zip(segment.records, live.tolist(), strict=True))
            if ok
        }

    def stamp(self, generation: str | None) -> None:
        """Record that this state is Chroma generation `generation`, in memory and in the
        saved manifest when that names this state (so other processes need no full check)."""
        self.set_generation(generation)
        try:
            with self._folder_lock(fcntl.LOCK_EX):
                saved = self.read_manifest()
                if saved is not None and saved["state_id"] == self.state_id:
                    saved["chroma_generation"] = generation
                    replace_file(self.directory / "state.json", json.dumps(saved))
        except OSError as error:
            log.warning("could not save the keyword index to %s: %s", self.directory, error)

    def set_generation(self, generation: str | None) -> None:
        with self._update:
            state = self._state
            self._state = _State(
                state.segments, state.alive, state.global_of, state.records, state.total_length,
                state.value, state.state_id, generation,
            )  # fmt: skip

    # Changes ------------------------------------------------------------------------------

    def rebuild(
        self, records: list[ChunkRecord], state: str | None = None, *, generation: str | None = None
    ) -> None:
        """Index `records` anew, and persist them as the main segment."""
        segment = Segment.build(records)
        with self._update:
            self._install(_State.of([segment], uuid.uuid4().hex, generation))
            self._reset_loc()
            self._save_full(log_entries=[])

    def apply(
        self,
        upserts: Sequence[ChunkRecord],
        deletes: Sequence[str],
        generation: str,
        vectors: np.ndarray | None = None,
    ) -> bool:
        """Add a delta segment (new and changed chunks, deleted ids; `vectors`: the chunks',
        if known) as Chroma generation `generation` and persist it; merging happens later, on
        another thread. False when the saved index has moved on in another process meanwhile:
        nothing is saved then."""
        segment = Segment.build(list(upserts), deletes, vectors)
        with self._update:
            before = self._state
            self._install(self._with_delta(before, segment, uuid.uuid4().hex, generation))
            saved = self._save_delta(segment, before.state_id)
        self._merge_soon()
        return saved

    def _with_delta(
        self, state: _State, segment: Segment, state_id: str, generation: str | None
    ) -> _State:
        """`state` with `segment` on top (updates the id -> place map: hold `_update`)."""
        alive = list(state.alive)
        copied: set[int] = set()
        value = state.value
        for chunk_id in [*segment.deletes, *(r.id for r in segment.records)]:
            place = self._loc.pop(chunk_id, None)
            if place is None:
                continue
            s, row = place
            if s not in copied:
                alive[s] = alive[s].copy()
                copied.add(s)
            alive[s][row] = False
            value -= chunk_hash(chunk_id, state.segments[s].records[row].metadata)
        k = len(state.segments)
        for i, r in enumerate(segment.records):
            self._loc[r.id] = (k, i)
            value += chunk_hash(r.id, r.metadata)
        alive.append(np.ones(len(segment), dtype=bool))
        return _State.make((*state.segments, segment), alive, value, state_id, generation)

    # Merging, off the write path (see index.keyword_merge) --------------------------------

    def _merge_soon(self) -> None:
        """Start the merging thread if the segments call for a merge and none runs."""
        with self._update:
            if self._merger is not None or self._next_merge() is None:
                return
            self._merger = threading.Thread(target=self._merge_all, name="keyword-merge")
            self._merger.daemon = True
            self._merger.start()

    def _next_merge(self) -> tuple[int, int] | None:
        return next_merge([len(s) for s in self._state.segments])

    def settle(self) -> None:
        """Wait until no merge is under way (a process that is about to exit calls this)."""
        while (merger := self._merger) is not None:
            merger.join()  # a merge that ends starts the next one it calls for first

    def _merge_all(self) -> None:
        try:
            while True:
                with self._update:
                    state, planned = self._state, self._next_merge()
                if planned is None:
                    return
                start, end = planned
                segment = merged_range(state, start, end)  # the long part: no lock held
                names = [s.name for s in state.segments[start:end]]
                stored = self._persist_merge(names, segment, state.segments[0].name)
                with self._update:
                    after = rebased(self._state, state, start, end, stored or segment)
                    if after is not None:
                        self._install(after)
                        self._loc = rebased_places(self._loc, after, start, end)
        except Exception:  # a merge is an optimisation: the deltas stay as they are
            log.exception("merging the keyword index at %s failed", self.directory)
        finally:
            with self._update:
                self._merger = None
            self._merge_soon()  # writes while the last merge ran may call for another

    def _persist_merge(self, names: list[str], segment: Segment, main: str) -> Segment | None:
        """Save `segment`, the merge of the saved segments `names`, in their place, if the
        saved manifest still lists them: the segment as saved, else None. Its files are
        written to a folder of this process's own first, so writers wait only for the swap."""
        whole = names[0] == main
        folder = self.directory.with_name(f"{self.directory.name}.tmp-{os.getpid()}-{segment.name}")
        try:
            folder.mkdir(parents=True)
            if whole:
                stored = segment.save(
                    folder / "postings.npz", folder / "records.jsonl", header=False
                )
            else:
                npz, jsonl = folder / f"{segment.name}.npz", folder / f"{segment.name}.jsonl"
                stored = segment.save(npz, jsonl, header=True)
            with self._folder_lock(fcntl.LOCK_EX):
                saved = self.read_manifest()
                listed = [saved.get("main_id", "main"), *saved["segments"]] if saved else []
                at = next(
                    (i for i in range(len(listed)) if listed[i : i + len(names)] == names), None
                )
                if saved is None or at is None:
                    return None
                rest = [*listed[1:at], segment.name, *listed[at + len(names) :]]
                if whole:
                    manifest = {**saved, "main_id": segment.name, "main_records": len(segment)}
                    self._swap_folder(folder, {**manifest, "segments": rest[1:]})
                else:
                    sync_tree(folder)
                    self.deltas.mkdir(parents=True, exist_ok=True)
                    for path in folder.iterdir():
                        path.rename(self.deltas / path.name)
                    sync_dir(self.deltas)
                    manifest = {**saved, "segments": rest}
                    replace_file(self.directory / "state.json", json.dumps(manifest))
                self._drop_unused_deltas()
            return stored
        except OSError as error:
            log.warning("could not save a keyword index merge to %s: %s", self.directory, error)
            return None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def add_vectors(self, fetch: Callable[[list[str]], dict[str, np.ndarray]]) -> int:
        """Write a vectors file for each saved segment that has none (see
        `index.keyword_vectors.add_vectors`); how many chunks got their vectors."""
        return add_vectors(self, fetch)

    # Following the saved index -------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        """The saved manifest (a small file), or None when there is none to read."""
        try:
            manifest = json.loads((self.directory / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return manifest if isinstance(manifest, dict) and manifest.get("version") == 2 else None

    def follow(self, manifest: dict[str, Any]) -> bool:
        """Take the saved state `manifest` names: by its new deltas alone when this process
        holds a state of its log, else by loading it whole. True when the state changed;
        raises (OSError, ValueError) when the saved index does not load."""
        with self._update:
            state = self._state
            if self.loaded and manifest["state_id"] == state.state_id:
                self.set_generation(manifest.get("chroma_generation"))
                return False
            if self.loaded and self._catch_up(manifest):
                return True
            with self._folder_lock(fcntl.LOCK_SH):
                self._load_whole(fingerprint=None)
            return True

    def _catch_up(self, manifest: dict[str, Any]) -> bool:
        entries = manifest.get("log", [])
        start = next(
            (i for i, e in enumerate(entries) if e["before"] == self._state.state_id), None
        )
        if start is None or entries[-1]["after"] != manifest["state_id"]:
            return False
        generation = manifest.get("chroma_generation")
        try:
            with self._folder_lock(fcntl.LOCK_SH):
                segments = [self._load_delta(e["file"]) for e in entries[start:]]
        except (OSError, ValueError, KeyError) as error:
            log.info("keyword deltas at %s not usable (%s); loading whole", self.deltas, error)
            return False
        state = self._state
        for segment, entry in zip(segments, entries[start:], strict=True):
            state = self._with_delta(state, segment, entry["after"], generation)
        if fingerprint_hex(state.value) != manifest["fingerprint"]:
            self._reset_loc()
            return False
        self._install(state)
        self._saved_id = state.state_id
        self._merge_soon()
        return True

    def load_persisted(self, expected: str) -> bool:
        """Load the saved index if it was built from the state `expected` and is whole."""
        try:
            with self._update, self._folder_lock(fcntl.LOCK_SH):
                self._load_whole(fingerprint=expected)
        except Exception as error:  # a derived index that fails to load is rebuilt, whatever
            log.info("keyword index at %s not usable (%s); rebuilding", self.directory, error)
            return False
        return True

    def _load_whole(self, fingerprint: str | None) -> None:
        state = self._read_whole(fingerprint)
        self._install(state)
        self._reset_loc()
        self._saved_id = state.state_id

    def _read_whole(self, expected: str | None) -> _State:
        """The saved state; raises ValueError unless it is the state `expected` (any, if None)
        and complete (files cut short by a crash or a full disk fail here)."""
        manifest = json.loads((self.directory / "state.json").read_text())
        if expected is not None and manifest.get("fingerprint") != expected:
            raise ValueError("built from another state of the collection")
        main = Segment.load(
            manifest.get("main_id", "main"),
            self.directory / "postings.npz",
            self.directory / "records.jsonl",
            header=False,
        )
        if len(main) != manifest.get("main_records", len(main)):
            raise ValueError(f"{len(main)} records, {manifest['main_records']} saved")
        segments = [main, *(self._load_delta(name) for name in manifest.get("segments", []))]
        state = _State.of(segments, manifest["state_id"], manifest.get("chroma_generation"))
        if len(state.records) != manifest.get("records"):
            raise ValueError(f"{len(state.records)} records, {manifest.get('records')} saved")
        if fingerprint_hex(state.value) != manifest.get("fingerprint"):
            raise ValueError("records do not match their fingerprint")
        return state

    def _load_delta(self, name: str) -> Segment:
        return Segment.load(
            name, self.deltas / f"{name}.npz", self.deltas / f"{name}.jsonl", header=True
        )

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
                self._read_whole(expected)
        except FileNotFoundError as error:
            return f"missing ({Path(error.filename or self.directory).name})"
        except Exception as error:
            return str(error) or type(error).__name__
        return None

    # Saving -------------------------------------------------------------------------------

    def _manifest(self, log_entries: list[dict[str, str]], segments: list[str]) -> dict[str, Any]:
        state = self._state
        return {
            "version": 2,
            "fingerprint": fingerprint_hex(state.value),
            "records": len(state.records),
            "main_records": len(state.segments[0]) if state.segments else 0,
            "state_id": state.state_id,
            "chroma_generation": state.generation,
            "segments": segments,
            "log": log_entries[-LOG_LENGTH:],
        }

    def _save_delta(self, segment: Segment, before: str) -> bool:
        """Persist the delta that took the state from `before` to the current one; a failure
        only costs a rebuild in the next process. False if another process saved meanwhile."""
        state = self._state
        try:
            with self._folder_lock(fcntl.LOCK_EX):
                saved = self.read_manifest()
                if saved is not None and saved["state_id"] not in (before, self._saved_id):
                    return False  # another writer's state: leave it to the readers' check
                if saved is None or saved["state_id"] != before:
                    self._write_folder(self._manifest([], []))  # the disk was behind: all of it
                    return True
                name = segment.name
                self.deltas.mkdir(parents=True, exist_ok=True)
                stored = segment.save(
                    self.deltas / f"{name}.npz", self.deltas / f"{name}.jsonl", header=True
                )
                entries = [*saved["log"], {"before": before, "after": state.state_id, "file": name}]
                manifest = self._manifest(entries, [*saved["segments"], name])
                for key in ("main_id", "main_records"):  # the saved main, whatever merged since
                    manifest[key] = saved.get(key, manifest.get(key))
                replace_file(self.directory / "state.json", json.dumps(manifest))
                if self._state is state and state.segments[-1] is segment:
                    self._state = state.replaced(-1, stored)  # its texts read from disk
                self._saved_id = state.state_id
                self._drop_unused_deltas()
        except OSError as error:
            log.warning("could not save the keyword index to %s: %s", self.directory, error)
        return True

    def _save_full(self, log_entries: list[dict[str, str]]) -> None:
        try:
            with self._folder_lock(fcntl.LOCK_EX):
                self._write_folder(self._manifest(log_entries, []))
                self._drop_unused_deltas()
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

    def _write_folder(self, manifest: dict[str, Any]) -> None:
        """The current state as one main segment, in a folder swapped in whole."""
        state = self._state
        main = state.segments[0] if len(state.segments) == 1 else merge(state.segments, state.alive)
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        stored = main.save(tmp / "postings.npz", tmp / "records.jsonl", header=False)
        main_fields = {"main_id": main.name, "main_records": len(main), "segments": []}
        self._swap_folder(tmp, {**manifest, **main_fields})
        self._saved_id = state.state_id
        if self._state is state and len(state.segments) == 1:
            self._state = state.replaced(0, stored)  # its texts read from disk from now on

    def _swap_folder(self, tmp: Path, manifest: dict[str, Any]) -> None:
        """Make `tmp` (a main segment's files) the folder, with `manifest` (hold the lock)."""
        (tmp / "state.json").write_text(json.dumps(manifest))
        sync_tree(tmp)
        # Replace the old folder only once the new one is whole and on disk. A crash between
        # the two renames leaves no folder, which the next process rebuilds from Chroma.
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)
        sync_dir(self.directory.parent)
        shutil.rmtree(old, ignore_errors=True)

    def _drop_unused_deltas(self) -> None:
        """Delete delta files the manifest no longer needs, and the folders of merges whose
        process died before it could save them (hold the lock)."""
        saved = self.read_manifest() or {}
        keep = {*saved.get("segments", []), *(e["file"] for e in saved.get("log", []))}
        if self.deltas.exists():
            for path in self.deltas.iterdir():
                if path.name.split(".")[0] not in keep:
                    path.unlink(missing_ok=True)
        for path in self.directory.parent.glob(f"{self.directory.name}.tmp-*"):
            pid = path.name.rsplit(".tmp-", 1)[1].split("-")[0]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)

    # Searching ----------------------------------------------------------------------------

    def top_scores(self, query: str, state: _State | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25 scores) of the chunks that match `query`, rows ascending (see
        `_State.top_scores`). `state`: a state taken earlier (`snapshot`), else the current."""
        return (state or self._state).top_scores(query)

    def top_rows(
        self, query: str, k: int, allowed: np.ndarray, state: _State | None = None
    ) -> np.ndarray:
        """The rows of the `k` best chunks for `query` within `allowed`, best first (see
        `_State.top_rows`); `state` as in `top_scores`."""
        return (state or self._state).top_rows(query, k, allowed)

    def scores_at(self, query: str, rows: np.ndarray, state: _State | None = None) -> np.ndarray:
        """BM25 scores of `query` at `rows` (see `_State.scores_at`)."""
        return (state or self._state).scores_at(query, rows)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every record for `query` (zeros where nothing matches)."""
        size = len(self._state.records)
        rows, values = self.top_scores(query)
        out = np.zeros(size, dtype=np.float32)
        out[rows[rows < size]] = values[rows < size]
        return out

    def idf(self, terms: Sequence[str], state: _State | None = None) -> dict[str, float]:
        """BM25's (Lucene) inverse document frequency of each known term, over the chunks."""
        state = state or self._state
        out = {}
        for term in set(terms):
            found = state.term_scores(term)
            if found.rows.size:
                out[term] = found.idf
        return out

    def chunks_with(self, term: str) -> np.ndarray:
        """Rows of the chunks holding `term` (a token of `keyword_tokens`), sorted: a look-up
        and a slice of the postings of each segment, no scan."""
        rows = self._state.live_postings(term)[0]
        return np.unique(rows.astype(np.int64))

    def has_prefix(self, prefix: str) -> bool:
        """Whether some indexed token starts with `prefix` (a bisection of each segment's)."""
        import bisect

        for segment in self._state.segments:
            terms = segment.sorted_terms()
            at = bisect.bisect_left(terms, prefix)
            if at < len(terms) and terms[at].startswith(prefix):
                return True
        return False

    def chunks_with_all(self, text: str) -> np.ndarray:
        """Rows of the chunks holding every keyword token of `text` (empty when it has none)."""
        rows: np.ndarray | None = None
        for term in dict.fromkeys(keyword_tokens(text)):
            found = self.chunks_with(term)
            rows = found if rows is None else np.intersect1d(rows, found, assume_unique=True)
            if not rows.size:
                break
        return rows if rows is not None else np.zeros(0, dtype=np.int64)
