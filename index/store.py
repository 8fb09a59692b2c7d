"""The one store interface: Chroma (texts, vectors, metadata) and the derived keyword index."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.config import Settings
from index.errors import StoreUnavailableError
from index.keyword import ChunkRecord, KeywordIndex, fingerprint

log = logging.getLogger(__name__)

_PAGE = 2000


@dataclass(frozen=True, slots=True)
class ArticleState:
    """What Chroma holds of one article."""

    article_hash: str
    expected_chunks: int
    found_chunks: int

    @property
    def complete(self) -> bool:
        return self.found_chunks == self.expected_chunks


@dataclass(frozen=True, slots=True)
class DenseHit:
    record: ChunkRecord
    similarity: float


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_host:
            return chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except Exception as error:
        raise StoreUnavailableError(f"cannot open Chroma ({_where(settings)}): {error}") from error


def _where(settings: Settings) -> str:
    if settings.chroma_host:
        return f"server at {settings.chroma_host}:{settings.chroma_port}"
    return f"folder {settings.chroma_dir}"


class ChunkStore:
    """Chunks of articles in one Chroma collection, and a BM25 index kept in step with them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client = _client(settings)
        self._collection: Any = None
        self.keyword = KeywordIndex(settings.keyword_dir / settings.collection)
        self._synced_at = 0.0
        self._sync_lock = threading.Lock()

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

    def _call(self, action: Any) -> Any:
        """Run a Chroma call, turning connection failures into one clear error."""
        try:
            return action()
        except StoreUnavailableError:
            raise
        except Exception as error:
            if _is_connection_error(error):
                self._collection = None
                raise StoreUnavailableError(
                    f"Chroma is unavailable ({_where(self.settings)}): {error}"
                ) from error
            raise

    def count(self) -> int:
        return int(self._call(lambda: self.collection.count()))

    def article_states(self, article_ids: Sequence[str]) -> dict[str, ArticleState]:
        states: dict[str, ArticleState] = {}
        found: dict[str, int] = {}
        for start in range(0, len(article_ids), 500):
            batch = list(article_ids[start : start + 500])
            got = self._call(
                lambda batch=batch: self.collection.get(
                    where={"article_id": {"$in": batch}}, include=["metadatas"]
                )
            )
            for meta in got["metadatas"]:
                aid = str(meta["article_id"])
                found[aid] = found.get(aid, 0) + 1
                states[aid] = ArticleState(str(meta["article_hash"]), int(meta["n_chunks"]), 0)
        return {
            aid: ArticleState(s.article_hash, s.expected_chunks, found[aid])
            for aid, s in states.items()
        }

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
        """Remove the old chunks of `replace_articles`, then upsert these chunks."""
        replace = sorted(set(replace_articles))
        if replace:
            self._delete_where({"article_id": {"$in": replace}})
        if ids:
            self._call(
                lambda: self.collection.upsert(
                    ids=list(ids),
                    embeddings=vectors,
                    documents=list(documents),
                    metadatas=list(metadatas),
                )
            )

    def delete_articles(self, article_ids: Sequence[str]) -> int:
        """Delete every chunk of these articles; returns how many chunks went."""
        if not article_ids:
            return 0
        where = {"article_id": {"$in": list(article_ids)}}
        got = self._call(lambda: self.collection.get(where=where, include=[]))
        self._delete_where(where)
        return len(got["ids"])

    def delete_chunks(self, chunk_ids: Sequence[str]) -> None:
        for start in range(0, len(chunk_ids), _PAGE):
            batch = list(chunk_ids[start : start + _PAGE])
            self._call(lambda batch=batch: self.collection.delete(ids=batch))

    def _delete_where(self, where: dict[str, Any]) -> None:
        self._call(lambda: self.collection.delete(where=where))

    def dense_search(
        self, vector: np.ndarray, *, k: int, where: dict[str, Any] | None = None
    ) -> list[DenseHit]:
        k = min(k, self.count())
        if k <= 0:
            return []
        result = self._call(
            lambda: self.collection.query(
                query_embeddings=[vector.tolist()],
                n_results=k,
                where=where or None,
                include=["documents", "metadatas", "distances"],
            )
        )
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

    def iter_metadata(self) -> tuple[list[str], list[dict[str, Any]]]:
        """Every chunk id with its metadata (no texts, no vectors)."""
        return self._page(include=["metadatas"])[:2]

    def all_records(self) -> list[ChunkRecord]:
        ids, metas, docs = self._page(include=["metadatas", "documents"])
        return [ChunkRecord(i, d, dict(m)) for i, m, d in zip(ids, metas, docs, strict=True)]

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

    def sync_keyword_index(self, *, force: bool = False) -> bool:
        """Bring the keyword index in step with Chroma; returns True if it had to change.

        Readers call this often; it only looks at Chroma every `keyword_sync_seconds`."""
        with self._sync_lock:
            now = time.monotonic()
            if not force and now - self._synced_at < self.settings.keyword_sync_seconds:
                return False
            ids, metas = self.iter_metadata()
            state = fingerprint(ids, metas)
            self._synced_at = now
            if state == self.keyword.fingerprint:
                return False
            if self.keyword.load_persisted(state):
                return True
            records = self.all_records()
            # Chroma may have changed between the two reads; name the state we indexed.
            self.keyword.rebuild(
                records, fingerprint([r.id for r in records], [r.metadata for r in records])
            )
            return True

    def outlets(self) -> list[tuple[str, int]]:
        """Outlet names in the corpus with their article counts, most first."""
        self.sync_keyword_index()
        counts: dict[str, set[str]] = {}
        for record in self.keyword.records:
            source = str(record.metadata.get("source", ""))
            if source:
                counts.setdefault(source, set()).add(str(record.metadata["article_id"]))
        return sorted(((s, len(a)) for s, a in counts.items()), key=lambda x: (-x[1], x[0]))


def _is_connection_error(error: Exception) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return any(
        word in text
        for word in ("connect", "connection", "timeout", "unavailable", "refused", "could not")
    )
