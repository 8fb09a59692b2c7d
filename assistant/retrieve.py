"""Retrieval: dense search in Chroma, BM25 keyword search, and reciprocal rank fusion."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from index.config import Settings
from index.embedding import Embedder
from index.keyword import ChunkRecord
from index.store import ChunkStore


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrictions from the caller or the question: a date range and outlets."""

    date_from: str | None = None  # ISO date, inclusive
    date_to: str | None = None
    outlets: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.date_from or self.date_to or self.outlets)

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.date_from:
            clauses.append({"date_int": {"$gte": _date_int(self.date_from)}})
        if self.date_to:
            clauses.append({"date_int": {"$lte": _date_int(self.date_to)}})
        if self.outlets:
            clauses.append({"source": {"$in": list(self.outlets)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def admits(self, metadata: dict[str, Any]) -> bool:
        date = int(metadata.get("date_int", 0) or 0)
        if self.date_from and date < _date_int(self.date_from):
            return False
        if self.date_to and date > _date_int(self.date_to):
            return False
        return not self.outlets or metadata.get("source") in self.outlets


def _date_int(iso: str) -> int:
    return int(iso.replace("-", "")[:8])


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk with where it comes from and why it ranked."""

    chunk_id: str
    article_id: str
    text: str
    title: str
    source: str
    published: str
    url: str
    author: str
    start: int
    end: int
    score: float
    signals: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_record(
        cls, record: ChunkRecord, score: float, signals: dict[str, float] | None = None
    ) -> Passage:
        meta = record.metadata
        return cls(
            chunk_id=record.id,
            article_id=str(meta.get("article_id", "")),
            text=record.text,
            title=str(meta.get("title", "")),
            source=str(meta.get("source", "")),
            published=str(meta.get("published", "")),
            url=str(meta.get("url", "")),
            author=str(meta.get("author", "")),
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", 0)),
            score=score,
            signals=signals or {},
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dense_search(
    question_vector: np.ndarray, *, store: ChunkStore, k: int, filters: Filters | None = None
) -> list[tuple[ChunkRecord, float]]:
    where = filters.chroma_where() if filters else None
    return [
        (hit.record, hit.similarity)
        for hit in store.dense_search(question_vector, k=k, where=where)
    ]


def keyword_search(
    question: str, *, store: ChunkStore, k: int, filters: Filters | None = None
) -> list[tuple[ChunkRecord, float]]:
    store.sync_keyword_index()
    records = store.keyword.records
    scores = store.keyword.scores(question)
    if filters:
        mask = np.array([filters.admits(r.metadata) for r in records], dtype=bool)
        scores = np.where(mask, scores, 0.0)
    k = min(k, int(np.count_nonzero(scores)))
    if k <= 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(records[i], float(scores[i])) for i in top]


def reciprocal_rank_fusion(
    rankings: dict[str, list[tuple[ChunkRecord, float]]], *, rrf_k: int
) -> list[tuple[ChunkRecord, float, dict[str, float]]]:
    """Fuse ranked lists: each list gives 1 / (rrf_k + rank) to the chunks it holds."""
    fused: dict[str, tuple[ChunkRecord, float, dict[str, float]]] = {}
    for name, ranking in rankings.items():
        for rank, (record, raw) in enumerate(ranking, start=1):
            kept, score, signals = fused.get(record.id, (record, 0.0, {}))
            signals[name] = raw
            signals[f"{name}_rank"] = rank
            fused[record.id] = (kept, score + 1.0 / (rrf_k + rank), signals)
    return sorted(fused.values(), key=lambda item: -item[1])


class Retriever:
    """Hybrid search over one store: the pipeline both `search` and the assistant use."""

    def __init__(self, settings: Settings, *, store: ChunkStore, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder

    def search(
        self, question: str, *, k: int | None = None, filters: Filters | None = None
    ) -> list[Passage]:
        k = k or self.settings.top_k
        pool = max(self.settings.candidates, k)
        vector = self.embedder.embed_query(question)
        rankings = {
            "dense": dense_search(vector, store=self.store, k=pool, filters=filters),
            "keyword": keyword_search(question, store=self.store, k=pool, filters=filters),
        }
        fused = reciprocal_rank_fusion(rankings, rrf_k=self.settings.rrf_k)
        return [Passage.from_record(r, score, signals) for r, score, signals in fused[:k]]
