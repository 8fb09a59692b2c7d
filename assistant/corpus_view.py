"""The corpus as arrays (each chunk's vector, outlet, date and article) and filters over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from assistant.excerpts import ArticleText, RecentArticles
from assistant.query import DateRange, OutletMatcher
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

    def admits(self, metadata: dict[str, Any]) -> bool:
        """Whether a chunk passes; an unknown date fails any date bound."""
        day = int(metadata.get("date_int", 0) or 0)
        if (self.date_from or self.date_to) and not day:
            return False
        if self.date_from and day < _date_int(self.date_from):
            return False
        if self.date_to and day > _date_int(self.date_to):
            return False
        return not self.outlets or metadata.get("source") in self.outlets


def _date_int(iso: str) -> int:
    return int(iso.replace("-", "")[:8])


@dataclass
class CorpusView:
    """Every chunk's vector, outlet, date and article as arrays, in the keyword index's order:
    derived from Chroma like the keyword index, and rebuilt when the collection changes."""

    fingerprint: str
    records: list[ChunkRecord]
    matrix: np.ndarray  # (chunks, dimensions), unit vectors
    outlets: list[str]
    outlet_of: np.ndarray  # index into `outlets`, -1 when unknown
    day_of: np.ndarray  # date ordinal, 0 when unknown
    article_of: np.ndarray
    matcher: OutletMatcher
    latest: date | None
    texts: RecentArticles = field(default_factory=RecentArticles)  # built when first needed

    @classmethod
    def empty(cls) -> CorpusView:
        return cls(
            "",
            [],
            np.zeros((0, 0), np.float32),
            [],
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            OutletMatcher(()),
            None,
        )

    @classmethod
    def build(
        cls,
        fingerprint: str,
        records: list[ChunkRecord],
        store: ChunkStore,
        previous: CorpusView | None = None,
    ) -> CorpusView:
        known: dict[str, np.ndarray] = {}
        if previous is not None and previous.records:
            rows = {r.id: i for i, r in enumerate(previous.records)}
            known = {r.id: previous.matrix[rows[r.id]] for r in records if r.id in rows}
        missing = [r.id for r in records if r.id not in known]
        if missing:
            known.update(store.embeddings(missing))
        dims = next((len(v) for v in known.values()), 0)
        matrix = np.zeros((len(records), dims), dtype=np.float32)
        for i, record in enumerate(records):
            vector = known.get(record.id)
            if vector is not None:
                matrix[i] = vector
        outlets = sorted({str(r.metadata.get("source") or "") for r in records} - {""})
        code = {name: i for i, name in enumerate(outlets)}
        articles: dict[str, int] = {}
        days = np.array([_ordinal(r.metadata.get("date_int")) for r in records], dtype=np.int64)
        return cls(
            fingerprint=fingerprint,
            records=records,
            matrix=matrix,
            outlets=outlets,
            outlet_of=np.array(
                [code.get(str(r.metadata.get("source") or ""), -1) for r in records],
                dtype=np.int32,
            ),
            day_of=days,
            article_of=np.array(
                [
                    articles.setdefault(str(r.metadata.get("article_id")), len(articles))
                    for r in records
                ],
                dtype=np.int64,
            ),
            matcher=OutletMatcher(outlets),
            latest=date.fromordinal(int(days.max())) if days.size and days.max() > 0 else None,
        )

    def mask(self, filters: Filters | None) -> np.ndarray:
        """Which chunks the caller's filters admit."""
        keep = np.ones(len(self.records), dtype=bool)
        if not filters:
            return keep
        if filters.date_from:
            keep &= self.day_of >= date.fromisoformat(filters.date_from).toordinal()
        if filters.date_from or filters.date_to:
            keep &= self.day_of > 0
        if filters.date_to:
            keep &= self.day_of <= date.fromisoformat(filters.date_to).toordinal()
        if filters.outlets:
            keep &= self.outlet_mask(filters.outlets)
        return keep

    def rows_of(self, article: int) -> np.ndarray:
        return np.flatnonzero(self.article_of == article)

    def article_text(self, article: int, embedder: Embedder) -> ArticleText:
        """An article's text and sentences, from its chunks."""
        return self.texts.get(
            article,
            lambda: ArticleText.from_chunks(
                self.rows_of(article).tolist(), self.records, embedder.count_tokens
            ),
        )

    def outlet_mask(self, names: Sequence[str]) -> np.ndarray:
        codes = [self.outlets.index(n) for n in names if n in self.outlets]
        return np.isin(self.outlet_of, codes)

    def date_mask(self, ranges: Sequence[DateRange], *, slack_days: int = 1) -> np.ndarray:
        keep = np.zeros(len(self.records), dtype=bool)
        for r in ranges:
            low = (r.start - timedelta(days=slack_days)).toordinal()
            high = (r.end + timedelta(days=slack_days)).toordinal()
            keep |= (self.day_of >= low) & (self.day_of <= high)
        return keep


def _ordinal(date_int: Any) -> int:
    try:
        value = int(date_int or 0)
        return date(value // 10000, value // 100 % 100, value % 100).toordinal() if value else 0
    except (TypeError, ValueError):
        return 0
