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
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.keyword_segments import (
    Segment,
    bm25_idf,
    bm25_tf,
    chunk_hash,
    fingerprint_hex,
    fingerprint_value,
    merge,
    replace_file,
    sync_dir,
    sync_tree,
)
from index.keyword_state import _EMPTY, DELTA_SHARE, MAX_DELTAS, _State
from index.keyword_text import STOPWORDS, ChunkRecord, keyword_text, keyword_tokens

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
        self._compacting = False

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
            current = self._state.segments
            if segment >= min(len(state.segments), len(current)):
                return None  # newer than `state`, or not yet in this index
            if state.segments[segment] is not current[segment]:
                return None  # merged, loaded or saved again since: the map is another's
            rows = state.global_of[segment]
            row = int(rows[at]) if at < rows.size else -1
            return row if row >= 0 else None

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
        self, upserts: Sequence[ChunkRecord], deletes: Sequence[str], generation: str
    ) -> bool:
        """Add a delta segment (new and changed chunks, deleted ids) as Chroma generation
        `generation`, merging on the size threshold, and persist it. False when the saved
        index has moved on in another process meanwhile: nothing is saved then."""
        segment = Segment.build(list(upserts), deletes)
        with self._update:
            before = self._state
            after = self._with_delta(before, segment, uuid.uuid4().hex, generation)
            if after.needs_merge():
                after = self._merged(after)
            self._install(after)
            return self._save_delta(segment, before.state_id, merged=len(after.segments) == 1)

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

    def _merged(self, state: _State) -> _State:
        merged = _State.make(
            [merge(state.segments, state.alive)],
            [np.ones(len(state.records), dtype=bool)],
            state.value,
            state.state_id,
            state.generation,
        )
        self._loc = {r.id: (0, i) for i, r in enumerate(merged.records)}
        return merged

    def compact_soon(self) -> None:
        """Merge this process's segments in the background once they pass the threshold."""
        state = self._state
        if self._compacting or len(state.segments) < 2 or not state.needs_merge():
            return
        self._compacting = True

        def run() -> None:
            try:
                segment = merge(state.segments, state.alive)
                with self._update:
                    if self._state is state:
                        ones = [np.ones(len(segment), dtype=bool)]
                        self._install(
                            _State.make(
                                [segment], ones, state.value, state.state_id, state.generation
                            )
                        )
                        self._loc = {r.id: (0, i) for i, r in enumerate(segment.records)}
            finally:
                self._compacting = False

        threading.Thread(target=run, name="keyword-compact", daemon=True).start()

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
        self.compact_soon()
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
            "main",
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

    def _save_delta(self, segment: Segment, before: str, *, merged: bool) -> bool:
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
                name = f"d-{state.state_id}"
                self.deltas.mkdir(parents=True, exist_ok=True)
                stored = segment.save(
                    self.deltas / f"{name}.npz", self.deltas / f"{name}.jsonl", header=True
                )
                entries = [*saved["log"], {"before": before, "after": state.state_id, "file": name}]
                if merged:
                    self._write_folder(self._manifest(entries, []))
                else:
                    manifest = self._manifest(entries, [*saved["segments"], name])
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
        manifest = {**manifest, "main_records": len(main), "segments": []}
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
        self._saved_id = state.state_id
        if self._state is state and len(state.segments) == 1:
            self._state = state.replaced(0, stored)  # its texts read from disk from now on

    def _drop_unused_deltas(self) -> None:
        saved = self.read_manifest() or {}
        keep = {*saved.get("segments", []), *(e["file"] for e in saved.get("log", []))}
        if self.deltas.exists():
            for path in self.deltas.iterdir():
                if path.name.split(".")[0] not in keep:
                    path.unlink(missing_ok=True)

    # Searching ----------------------------------------------------------------------------

    def _live_postings(self, state: _State, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(live rows, term counts, chunk lengths) of the chunks holding `term`."""
        rows, tfs, lengths = [], [], []
        for segment, global_of in zip(state.segments, state.global_of, strict=True):
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

    def top_scores(self, query: str, state: _State | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, BM25 scores) of the chunks that match `query`, rows ascending: from the
        postings of its terms alone, with the statistics of all live chunks. `state`: a
        state taken earlier (`snapshot`) to score in, else the current one."""
        state = state or self._state
        n = len(state.records)
        tokens = keyword_tokens(query)
        rows_parts, score_parts = [], []
        if n and tokens:
            average = state.total_length / n
            for term, times in Counter(tokens).items():
                rows, tfs, lengths = self._live_postings(state, term)
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
            frequency = self._live_postings(state, term)[0].size
            if frequency:
                out[term] = bm25_idf(len(state.records), frequency)
        return out

    def chunks_with(self, term: str) -> np.ndarray:
        """Rows of the chunks holding `term` (a token of `keyword_tokens`), sorted: a look-up
        and a slice of the postings of each segment, no scan."""
        rows = self._live_postings(self._state, term)[0]
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
