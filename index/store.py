"""The one store interface: Chroma (texts, vectors, metadata) and the derived keyword index."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from index import keyword_sync
from index.chroma_client import (
    BREAKER_SECONDS,
    SERVER_PROBE_SECONDS,
    SERVER_READ_SECONDS,
    SERVER_STALL_SECONDS,
    SERVER_WRITE_SECONDS,
    CircuitBreaker,
    FolderLock,
    describe_error,
    heartbeat,
    is_connection_error,
    is_missing_collection,
    location,
    make_client,
    read_timeout,
)
from index.config import IndexSettings
from index.embedding import check_collection, claim_collection, recorded_identity
from index.errors import StoreUnavailableError
from index.keyword import ChunkRecord, KeywordIndex, fingerprint

if TYPE_CHECKING:
    from index.syndication import SyndicationIndex

_PAGE = 2000


@dataclass(frozen=True, slots=True)
class ArticleState:
    """What Chroma holds of one article."""

    article_hash: str
    expected_chunks: int
    found_chunks: int
    one_version: bool = True  # one article_hash and n_chunks, chunk indexes 0..n-1 at most once

    @property
    def complete(self) -> bool:
        return self.one_version and self.found_chunks == self.expected_chunks


@dataclass(frozen=True, slots=True)
class DenseHit:
    record: ChunkRecord
    similarity: float


class ChunkStore:
    """Chunks of articles in one Chroma collection, and a BM25 index kept in step with them."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self._folder_lock: FolderLock | None = None
        if not settings.chroma_host:
            try:
                settings.chroma_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreUnavailableError(
                    f"cannot open Chroma ({location(settings)}): {error}"
                ) from error
            self._folder_lock = FolderLock.for_folder(settings.chroma_dir)
            self._folder_lock.shared()
        self._client = make_client(settings)
        self._collection: Any = None
        self._max_batch: int | None = None
        self.keyword = KeywordIndex(settings.keyword_dir / settings.collection)
        self._synced_at = 0.0
        self._seen_generation: str | None = None
        self._sync_lock = threading.Lock()
        self._maintain_lock = threading.Lock()  # one thread brings the keyword index along
        # Writes through the pipeline keep the keyword index in step by deltas (keyword_sync).
        self._tracking = False
        self._op_depth = 0
        self._changes: dict[str, ChunkRecord | None] | None = None
        self.breaker = CircuitBreaker(self.where, BREAKER_SECONDS)
        self._probe_lock = threading.Lock()
        self._alive_at = float("-inf")
        self._vectors_claimed = False
        # The syndication signatures of this process's last write, with the keyword index
        # state they match (index.pipeline.load_syndication): a write need not read them all.
        self.syndication: tuple[str, SyndicationIndex] | None = None

    @property
    def where(self) -> str:
        """The Chroma this store uses, in words: a server's address or a folder."""
        return location(self.settings)

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = self._call(
                lambda: self._client.get_or_create_collection(
                    self.settings.collection,
                    metadata={"hnsw:space": "cosine"},
                    embedding_function=None,
                )
            )
        return self._collection

    def _call(self, action: Callable[..., Any], *, write: bool = False) -> Any:
        """Run a Chroma call, turning connection failures into one clear error.

        While the store fails, calls fail at once (see `CircuitBreaker`). The collection handle
        is dropped on failure, so the next call fetches it again from a server that came back
        (and a collection made anew there gets its new id)."""
        self.breaker.admit(self._probe)
        for attempt in (1, 2):
            try:
                return self._bounded(action, write=write)
            except StoreUnavailableError:
                self._collection = None
                raise
            except Exception as error:
                if is_connection_error(error):
                    self._collection = None
                    message = f"Chroma is unavailable ({self.where}): {describe_error(error)}"
                    self.breaker.trip(message)
                    raise StoreUnavailableError(message) from error
                if attempt == 1 and is_missing_collection(error):
                    self._collection = None
                    continue
                raise
        raise AssertionError("unreachable")

    def _bounded(self, action: Callable[..., Any], *, write: bool) -> Any:
        """`action`, with a server's requests under the timeouts set out at the top."""
        if not self.settings.chroma_host:
            return action()
        import httpx

        token = read_timeout.set(SERVER_WRITE_SECONDS if write else SERVER_STALL_SECONDS)
        try:
            try:
                return action()
            except httpx.TimeoutException as error:
                if write:
                    raise
                problem = self._stalled()
                if problem:
                    raise StoreUnavailableError(problem) from error
            # The server answers, slowly: this read gets the long timeout.
            read_timeout.set(SERVER_READ_SECONDS)
            return action()
        finally:
            read_timeout.reset(token)

    def _stalled(self) -> str | None:
        """After a read stalled: None if the server is alive, else why the store is unavailable.

        One thread asks at a time; the others take its answer (an open breaker, or a recent
        heartbeat) instead of all asking at once."""
        with self._probe_lock:
            if self.breaker.is_open:
                return self.breaker.reason
            if time.monotonic() - self._alive_at < SERVER_PROBE_SECONDS:
                return None
            problem = heartbeat(self.settings)
            if problem is None:
                self._alive_at = time.monotonic()
                return None
            message = (
                f"Chroma is unavailable ({self.where}): no answer within "
                f"{SERVER_STALL_SECONDS:g} s and {problem}"
            )
            self.breaker.trip(message)
            return message

    def _probe(self) -> None:
        """Raise StoreUnavailableError unless the store answers a heartbeat within seconds."""
        if not self.settings.chroma_host:
            try:
                self._client.heartbeat()
            except Exception as error:
                raise StoreUnavailableError(
                    f"Chroma is unavailable ({self.where}): {describe_error(error)}"
                ) from error
            return
        problem = heartbeat(self.settings)
        if problem:
            raise StoreUnavailableError(f"Chroma is unavailable ({self.where}): {problem}")
        self._alive_at = time.monotonic()

    def ping(self) -> None:
        """Raise StoreUnavailableError unless the store answers now; seconds at most, never a hang.

        For health checks: an open breaker answers at once, without asking the store."""
        if self.breaker.admit(self._probe):
            return  # the breaker's own probe has just asked
        try:
            self._probe()
        except StoreUnavailableError as error:
            self.breaker.trip(str(error))
            raise

    def take_for_writing(self) -> None:
        """Take an embedded folder for writing (it must not be open in another process): a
        writer calls this first so that a clash shows before any work."""
        if self._folder_lock is not None:
            self._folder_lock.exclusive()

    def begin_writes(self) -> None:
        """Take the folder for writing and give the collection a new generation: every write
        does this first."""
        self.take_for_writing()
        self._mark_changed()

    @contextlib.contextmanager
    def incremental_keyword(self) -> Iterator[None]:
        """Writes inside this put what they change into the keyword index as deltas."""
        previous, self._tracking = self._tracking, True
        try:
            yield
        finally:
            self._tracking = previous

    def _note(self, records: Iterable[ChunkRecord] = (), deleted: Iterable[str] = ()) -> None:
        if self._changes is not None:
            self._changes.update((r.id, r) for r in records)
            self._changes.update((chunk_id, None) for chunk_id in deleted)

    def _mark_changed(self) -> None:
        """Give the collection a new generation, so readers elsewhere know to look again.

        Writers mark before and after they write: a writer that dies half-way still leaves
        a new generation behind it."""
        self._set_generation(uuid.uuid4().hex)

    def _set_generation(self, generation: str) -> None:
        # modify() replaces the whole metadata: keep what it records about the vectors.
        def mark() -> None:
            collection = self.collection  # made here if the store is new
            held = recorded_identity(self._client.get_collection(self.settings.collection).metadata)
            collection.modify(metadata={**held, "generation": generation})

        self._call(mark, write=True)

    def claim_vectors(self) -> None:
        """Record which backend, precision and model make the collection's vectors, or refuse
        vectors made otherwise (see index.embedding.claim_collection)."""
        if not self._vectors_claimed:
            client, settings = self._client, self.settings
            self._call(lambda: claim_collection(client, self.collection, settings), write=True)
            self._vectors_claimed = True

    def check_vectors(self) -> None:
        """Refuse to search a collection whose vectors these settings do not make (questions
        would be embedded into another space): VectorMismatchError, naming both."""
        self._call(lambda: check_collection(self._client, self.collection, self.settings))

    def generation(self) -> str | None:
        """The collection's current generation: a cheap question, unlike a fingerprint."""
        name = self.settings.collection

        def read() -> Any:
            assert self.collection is not None  # made here if the store is new
            return self._client.get_collection(name).metadata

        metadata = self._call(read) or {}
        value = metadata.get("generation")
        return None if value is None else str(value)

    def collection_names(self) -> list[str]:
        """The store's collections that hold chunks, this one's or others', sorted by name."""
        # Empty ones are left out: a collection is made by merely opening it, so a name that was
        # only ever asked for would otherwise be offered as an archive.
        return list(
            self._call(
                lambda: sorted(c.name for c in self._client.list_collections() if c.count() > 0)
            )
        )

    @property
    def max_batch(self) -> int:
        """The most records Chroma takes in one call."""
        if self._max_batch is None:
            self._max_batch = int(self._call(lambda: self._client.get_max_batch_size()))
        return self._max_batch

    def count(self) -> int:
        return int(self._call(lambda: self.collection.count()))

    def article_states(self, article_ids: Sequence[str]) -> dict[str, ArticleState]:
        seen: dict[str, tuple[set[str], set[int], list[int]]] = {}
        for start in range(0, len(article_ids), 500):
            batch = list(article_ids[start : start + 500])
            got = self._call(
                lambda batch=batch: self.collection.get(
                    where={"article_id": {"$in": batch}}, include=["metadatas"]
                )
            )
            for meta in got["metadatas"]:
                hashes, totals, indexes = seen.setdefault(
                    str(meta["article_id"]), (set(), set(), [])
                )
                hashes.add(str(meta["article_hash"]))
                totals.add(int(meta["n_chunks"]))
                indexes.append(int(meta["chunk"]))
        states = {}
        for aid, (hashes, totals, indexes) in seen.items():
            expected = max(totals)
            one_version = (
                len(hashes) == 1 and len(totals) == 1 and sorted(indexes) == list(range(expected))
            )
            states[aid] = ArticleState(min(hashes), expected, len(indexes), one_version)
        return states

    def articles_with_body(self, body_hashes: Sequence[str]) -> dict[str, str]:
        """Body hash -> id of an article already stored with that body."""
        owners: dict[str, str] = {}
        for start in range(0, len(body_hashes), 500):
            batch = list(body_hashes[start : start + 500])
            got = self._call(
                lambda batch=batch: self.collection.get(
                    where={"$and": [{"body_hash": {"$in": batch}}, {"chunk": 0}]},
                    include=["metadatas"],
                )
            )
            for meta in got["metadatas"]:
                owners[str(meta["body_hash"])] = str(meta["article_id"])
        return owners

    def write(
        self,
        *,
        ids: Sequence[str],
        vectors: np.ndarray,
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        replace_articles: Iterable[str] = (),
    ) -> None:
        """Upsert these chunks, then delete what is left of older versions of `replace_articles`.

        Upserting first keeps every article searchable while it is replaced. A crash between
        the steps leaves chunks of two versions of an article, which `article_states` reports
        as incomplete, so that the next ingest writes the article again."""
        self.claim_vectors()
        with keyword_sync.write_op(self):
            step = self.max_batch
            for start in range(0, len(ids), step):
                end = start + step
                self._call(
                    lambda start=start, end=end: self.collection.upsert(
                        ids=list(ids[start:end]),
                        embeddings=vectors[start:end],
                        documents=list(documents[start:end]),
                        metadatas=list(metadatas[start:end]),
                    ),
                    write=True,
                )
                self._note(
                    ChunkRecord(i, d, dict(m))
                    for i, d, m in zip(
                        ids[start:end], documents[start:end], metadatas[start:end], strict=True
                    )
                )
            replace = sorted(set(replace_articles))
            if replace:
                written = set(ids)
                old = self.chunk_ids_where({"article_id": {"$in": replace}})
                self.delete_chunks([chunk_id for chunk_id in old if chunk_id not in written])

    def chunk_ids_where(self, where: dict[str, Any]) -> list[str]:
        got = self._call(lambda: self.collection.get(where=where, include=[]))
        return list(got["ids"])

    def set_article_fields(self, article_id: str, fields: dict[str, Any]) -> int:
        """Set these metadata fields on every chunk of an article (no new vectors); how many
        chunks changed. One Chroma call, so a crash leaves the article all old or all new."""
        got = self._call(
            lambda: self.collection.get(
                where={"article_id": article_id}, include=["metadatas", "documents"]
            )
        )
        if not got["ids"]:
            return 0
        with keyword_sync.write_op(self):
            metadatas = [{**dict(meta), **fields} for meta in got["metadatas"]]
            self._call(
                lambda: self.collection.update(ids=list(got["ids"]), metadatas=metadatas),
                write=True,
            )
            self._note(
                ChunkRecord(i, d, m)
                for i, d, m in zip(got["ids"], got["documents"], metadatas, strict=True)
            )
        return len(got["ids"])

    def existing_chunks(self, chunk_ids: Sequence[str]) -> list[str]:
        """Those of these chunk ids that Chroma holds."""
        found: list[str] = []
        for start in range(0, len(chunk_ids), _PAGE):
            batch = list(chunk_ids[start : start + _PAGE])
            found += self._call(lambda batch=batch: self.collection.get(ids=batch, include=[]))[
                "ids"
            ]
        return found

    def delete_articles(self, article_ids: Sequence[str]) -> int:
        """Delete every chunk of these articles; returns how many chunks went."""
        if not article_ids:
            return 0
        removed = 0
        with keyword_sync.write_op(self):
            for start in range(0, len(article_ids), 500):
                batch = list(article_ids[start : start + 500])
                chunk_ids = self.chunk_ids_where({"article_id": {"$in": batch}})
                self.delete_chunks(chunk_ids)
                removed += len(chunk_ids)
        return removed

    def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        if not chunk_ids:
            return
        with keyword_sync.write_op(self):
            for start in range(0, len(chunk_ids), _PAGE):
                batch = list(chunk_ids[start : start + _PAGE])
                self._call(lambda batch=batch: self.collection.delete(ids=batch), write=True)
                self._note(deleted=batch)

    def dense_search(
        self, vector: np.ndarray, *, k: int, where: dict[str, Any] | None = None
    ) -> list[DenseHit]:
        k = min(k, self.count())
        if k <= 0:
            return []
        result = self._query(vector[None], k, where, ["documents", "metadatas", "distances"])
        return [
            DenseHit(ChunkRecord(cid, doc, dict(meta)), 1.0 - float(dist))
            for cid, doc, meta, dist in zip(
                result["ids"][0],
                result["documents"][0],
                result["metadatas"][0],
                result["distances"][0],
                strict=True,
            )
        ]

    def warm_vector_index(self) -> None:
        """Have Chroma load its vector index now (it does at the first query): a query with a
        stored vector, so that the load overlaps other start-up work."""
        got = self._call(lambda: self.collection.get(limit=1, include=["embeddings"]))
        if got["ids"]:
            self._query(np.asarray(got["embeddings"][:1], dtype=np.float32), 1, None, [])

    def nearest(
        self, vectors: np.ndarray, *, k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[list[str], np.ndarray]]:
        """For each of `vectors`, the ids and vectors of Chroma's `k` nearest chunks (HNSW)."""
        got = self._query(vectors, k, where, ["embeddings"])
        return [
            (list(ids), np.asarray(found, dtype=np.float32).reshape(len(ids), -1))
            for ids, found in zip(got["ids"], got["embeddings"], strict=True)
        ]

    def _query(
        self, vectors: np.ndarray, k: int, where: dict[str, Any] | None, include: list[str]
    ) -> Any:
        return self._call(
            lambda: self.collection.query(
                query_embeddings=np.asarray(vectors, dtype=np.float32),
                n_results=k,
                where=where or None,
                include=include,
            )
        )

    def iter_metadata(self) -> tuple[list[str], list[dict[str, Any]]]:
        """Every chunk id with its metadata (no texts, no vectors)."""
        return self._page(include=["metadatas"])[:2]

    def all_records(self) -> list[ChunkRecord]:
        ids, metas, docs = self._page(include=["metadatas", "documents"])
        return [ChunkRecord(i, d, dict(m)) for i, m, d in zip(ids, metas, docs, strict=True)]

    def embeddings(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vector of each of these chunks that has one."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(chunk_ids), _PAGE):
            batch = list(chunk_ids[start : start + _PAGE])
            got = self._call(
                lambda batch=batch: self.collection.get(ids=batch, include=["embeddings"])
            )
            vectors = got["embeddings"]
            if vectors is None:
                continue
            for chunk_id, vector in zip(got["ids"], vectors, strict=True):
                if vector is not None:
                    found[chunk_id] = np.asarray(vector, dtype=np.float32)
        return found

    def _page(self, *, include: list[str]) -> tuple[list[str], list[dict[str, Any]], list[str]]:
        ids: list[str] = []
        metas: list[dict[str, Any]] = []
        docs: list[str] = []
        offset = 0
        while True:
            got = self._call(
                lambda offset=offset: self.collection.get(
                    include=include, limit=_PAGE, offset=offset
                )
            )
            ids += got["ids"]
            metas += [dict(m) for m in got["metadatas"] or []]
            docs += got["documents"] or []
            if len(got["ids"]) < _PAGE:
                return ids, metas, docs
            offset += _PAGE

    def chroma_fingerprint(self) -> str:
        """Names the state of the collection the keyword index must have been built from."""
        ids, metas = self.iter_metadata()
        return fingerprint(ids, metas)

    def sync_keyword_index(self, *, force: bool = False) -> bool:
        """Bring the keyword index in step with Chroma; True if it had to change (see
        `keyword_sync.sync`: the new deltas alone when the saved index names Chroma's state)."""
        return keyword_sync.sync(self, force=force)

    def rebuild_keyword_index(self) -> None:
        """Index Chroma's chunks anew, whatever the persisted keyword index holds."""
        keyword_sync.rebuild(self)

    def outlets(self) -> list[tuple[str, int]]:
        """Outlet names in the corpus with their article counts, most first."""
        self.sync_keyword_index()
        state = self.keyword.snapshot()
        counts: dict[str, set[str]] = {}
        for source, article in zip(state.column("source"), state.column("article_id"), strict=True):
            if source:
                counts.setdefault(str(source), set()).add(str(article))
        return sorted(((s, len(a)) for s, a in counts.items()), key=lambda x: (-x[1], x[0]))
