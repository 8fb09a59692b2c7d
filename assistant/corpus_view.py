"""The corpus as arrays (each chunk's outlet, date and article, and with exact dense search its
vector) and filters over it; the question's cosines with chunks, from those vectors or from
Chroma's HNSW index."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np

from assistant.excerpts import ArticleText, RecentArticles
from assistant.query import DateRange, OutletMatcher
from index.embedding import Embedder
from index.keyword import ChunkRecord
from index.keyword_text import metadata_column
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

    def where(self) -> dict[str, Any] | None:
        """The same restrictions as a Chroma `where` clause (on `date_int` and `source`)."""
        clauses: list[dict[str, Any]] = []
        if self.date_from or self.date_to:
            clauses.append({"date_int": {"$gt": 0}})
        if self.date_from:
            clauses.append({"date_int": {"$gte": _date_int(self.date_from)}})
        if self.date_to:
            clauses.append({"date_int": {"$lte": _date_int(self.date_to)}})
        if self.outlets:
            clauses.append({"source": {"$in": list(self.outlets)}})
        return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}


DenseSearch = Literal["hnsw", "exact"]
# Chroma's HNSW index is asked for this many times the pool, and the pool is the best of those
# by cosine: its recall of the exact pool (60) over 60 MultiHop-RAG dev questions, at 1x, 2x,
# 4x, 8x: 0.985, 0.990, 0.999, 1.000 (8k chunks); 0.906, 0.944, 0.977, 0.999 (80k synthetic,
# 10 noisy copies of each chunk); 0.808, 0.822, 0.918, 0.979 (200k, 25 copies: near-copies
# are HNSW's worst case). 4x costs 5-8 ms a query (bench/scale.py --reuse).
HNSW_OVERSAMPLE = 4


def _date_int(iso: str) -> int:
    return int(iso.replace("-", "")[:8])


@dataclass
class CorpusView:
    """Every chunk's outlet, date and article (and, for exact dense search, its vector) as
    arrays, in the keyword index's order: derived from Chroma like the keyword index, and
    rebuilt when the collection changes."""

    fingerprint: str
    records: list[ChunkRecord]
    matrix: np.ndarray  # (chunks, dimensions), unit vectors; (0, 0) with dense search "hnsw"
    outlets: list[str]
    outlet_of: np.ndarray  # index into `outlets`, -1 when unknown
    day_of: np.ndarray  # date ordinal, 0 when unknown
    article_of: np.ndarray
    matcher: OutletMatcher
    latest: date | None
    texts: RecentArticles = field(default_factory=RecentArticles)  # built when first needed
    store: ChunkStore | None = None  # with dense search "hnsw": where vectors are fetched
    # The keyword index state the records are (its rows are the view's), when made from one.
    keyword_state: Any = field(default=None, repr=False)
    _row_of: dict[str, int] | None = field(default=None, repr=False)
    _row_finder: Callable[[str], int | None] | None = field(default=None, repr=False)
    _by_article: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def holds_vectors(self) -> bool:
        """Whether every chunk's vector is held here (exact dense search)."""
        return self.store is None

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
        *,
        dense: DenseSearch = "exact",
        columns: Callable[[str], list[Any]] | None = None,
        row_of: Callable[[str], int | None] | None = None,
        keyword_state: Any = None,
    ) -> CorpusView:
        """The view of `records`; with dense search "exact", every vector fetched from Chroma
        (those `previous` holds reused), with "hnsw" none. `columns(key)`: every record's
        metadata value for key (the keyword index reads them without a dict per chunk);
        `row_of`: a chunk id's row (else a map is made when first needed)."""
        matrix = np.zeros((0, 0), dtype=np.float32)
        if dense == "exact":
            matrix = _matrix(records, store, previous)
        if columns is None:
            columns = functools.partial(metadata_column, records)
        sources = [str(s or "") for s in columns("source")]
        outlets = sorted(set(sources) - {""})
        code = {name: i for i, name in enumerate(outlets)}
        days = _ordinals(columns("date_int"))
        articles: dict[str, int] = {}
        return cls(
            fingerprint=fingerprint,
            records=records,
            matrix=matrix,
            outlets=outlets,
            outlet_of=np.array([code.get(s, -1) for s in sources], dtype=np.int32),
            day_of=days,
            article_of=np.array(
                [articles.setdefault(str(a), len(articles)) for a in columns("article_id")],
                dtype=np.int64,
            ),
            matcher=OutletMatcher(outlets),
            latest=date.fromordinal(int(days.max())) if days.size and days.max() > 0 else None,
            store=store if dense == "hnsw" else None,
            _row_finder=row_of,
            keyword_state=keyword_state,
        )

    def row_of(self, chunk_id: str) -> int | None:
        """A chunk's row in the view, None if it has none."""
        if self._row_finder is not None:
            return self._row_finder(chunk_id)
        if self._row_of is None:
            self._row_of = {r.id: i for i, r in enumerate(self.records)}
        return self._row_of.get(chunk_id)

    def column(self, key: str) -> list[Any]:
        """Every chunk's metadata value for `key` (None where it has none), in row order: from
        the keyword index's columns when the view was made from its state (no dict per chunk)."""
        if self.keyword_state is not None:
            return self.keyword_state.column(key)  # a new list
        return metadata_column(self.records, key)

    def fetch_vectors(self, rows: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of these rows that have one: from the matrix, else from the
        keyword index's segments where they hold them (read from disk, a millisecond or two),
        else from Chroma (20-25 ms for a search's 600 at 1M chunks)."""
        if self.store is None:
            return {r: self.matrix[r] for r in rows}
        out = {} if self.keyword_state is None else self.keyword_state.vectors(rows)
        rest = [self.records[r].id for r in rows if r not in out]
        if rest:
            found = self.store.embeddings(rest)
            out.update((r, found[self.records[r].id]) for r in rows if self.records[r].id in found)
        return out

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
        """The rows of an article's chunks, ascending (a look-up, not a scan of every row)."""
        if self._by_article is None:
            order = np.argsort(self.article_of, kind="stable")
            starts = np.searchsorted(self.article_of[order], np.arange(self._articles() + 1))
            self._by_article = (order, starts)
        order, starts = self._by_article
        if not 0 <= article < len(starts) - 1:
            return np.zeros(0, dtype=np.int64)
        return order[starts[article] : starts[article + 1]]

    def _articles(self) -> int:
        return int(self.article_of.max()) + 1 if self.article_of.size else 0

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


def _matrix(
    records: list[ChunkRecord], store: ChunkStore, previous: CorpusView | None
) -> np.ndarray:
    """Every record's vector, those `previous` holds reused, the others fetched from Chroma."""
    known: dict[str, np.ndarray] = {}
    if previous is not None and previous.records and previous.holds_vectors:
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
    return matrix


class Cosines:
    """Probe vectors' cosines with the corpus's chunks: with the view's matrix, all at once (as
    before); over Chroma's HNSW index, for the rows asked about, their vectors fetched by id
    (or taken from the index's answer) and kept for the rest of the query."""

    def __init__(
        self, view: CorpusView, probes: np.ndarray, vectors: dict[int, np.ndarray] | None = None
    ) -> None:
        """`vectors`: chunk vectors by row, fetched already and shared with other probes' and
        passes' cosines of the same query (each chunk is fetched once a query)."""
        self.view = view
        self.probes = np.atleast_2d(probes).astype(np.float32)  # (probes, dimensions)
        self.full = view.matrix @ self.probes.T if view.holds_vectors else None
        self._vectors: dict[int, np.ndarray] = {} if vectors is None else vectors
        self._nearest: dict[tuple[Any, ...], list[np.ndarray]] = {}  # the index's answers

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """(rows, dimensions): the chunks' vectors, zeros where the store has none."""
        if self.view.holds_vectors:
            return self.view.matrix[rows]
        wanted = [r for r in dict.fromkeys(rows.tolist()) if r not in self._vectors]
        if wanted:
            found = self.view.fetch_vectors(wanted)
            empty = np.zeros(self.probes.shape[1], dtype=np.float32)
            self._vectors.update((r, found.get(r, empty)) for r in wanted)
        out = np.zeros((rows.size, self.probes.shape[1]), dtype=np.float32)
        for i, r in enumerate(rows.tolist()):
            out[i] = self._vectors[r]
        return out

    def at(self, rows: np.ndarray) -> np.ndarray:
        """(rows, probes): the cosines at these rows."""
        if self.full is not None:
            return self.full[rows]
        return self.vectors(rows) @ self.probes.T

    def nearest(
        self, k: int, allowed: np.ndarray, filters: Filters | None, probes: Sequence[int]
    ) -> list[np.ndarray]:
        """For each probe in `probes`: the rows of its `k` nearest chunks within `allowed`."""
        if self.full is not None:
            return [top_rows(self.full[:, j] + 1.0, allowed, k) for j in probes]
        key = (k, tuple(probes), filters)
        if not probes or key in self._nearest:  # a search asks twice for a "Which ...?" question
            return self._nearest.get(key, [])
        store = self.view.store
        assert store is not None
        where = filters.where() if filters else None
        out = self._nearest[key] = []
        asked = self.probes[list(probes)]
        answers = store.nearest(asked, k=k * HNSW_OVERSAMPLE, where=where)
        for probe, (ids, vectors) in zip(asked, answers, strict=True):
            rows, keep = [], []
            for i, chunk_id in enumerate(ids):
                row = self.view.row_of(chunk_id)  # None: newer than the view
                if row is not None and allowed[row]:
                    rows.append(row)
                    keep.append(i)
                    self._vectors[row] = vectors[i]
            cosines = vectors[keep] @ probe if keep else np.zeros(0, dtype=np.float32)
            best = np.argsort(-cosines, kind="stable")[:k]
            out.append(np.array(rows, dtype=np.int64)[best])
        return out


def top_rows(scores: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the `k` best-scoring chunks within `mask` (positive scores only)."""
    candidates = np.flatnonzero(mask & (scores > 0))
    if candidates.size == 0:
        return candidates
    k = min(k, candidates.size)
    part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
    return part[np.argsort(-scores[part], kind="stable")]


def _ordinals(date_ints: list[Any]) -> np.ndarray:
    """Each date_int's day ordinal (0 where unknown), made once for each distinct value."""
    known: dict[Any, int] = {}
    return np.array(
        [known[d] if d in known else known.setdefault(d, _ordinal(d)) for d in date_ints],
        dtype=np.int64,
    )


def _ordinal(date_int: Any) -> int:
    try:
        value = int(date_int or 0)
        return date(value // 10000, value // 100 % 100, value % 100).toordinal() if value else 0
    except (TypeError, ValueError):
        return 0
