"""The archive as the layers above see it: one store, one model, and what can be done to them."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from index.check import CheckReport, RepairReport, check_store, repair_store
from index.config import IndexSettings
from index.embedding import Embedder, VectorCache
from index.pipeline import IngestReport, delete_articles, ingest
from index.store import ChunkStore

if TYPE_CHECKING:
    from index.fetch import Fetcher


@dataclass(frozen=True, slots=True)
class ArticleInfo:
    """One stored article, as its chunks' metadata describe it."""

    id: str
    title: str
    source: str
    published: str  # ISO date, or "" when the article has none
    url: str
    chunks: int


@dataclass(frozen=True, slots=True)
class CorpusSummary:
    """What the archive holds, for health checks, `stats` and the page's header."""

    articles: int
    chunks: int
    outlets: list[tuple[str, int]]  # (outlet, articles), most first
    first_date: str | None
    last_date: str | None
    titles: list[tuple[str, str]]  # (published, title), newest first


class Index:
    """Ingest, delete, check and list the articles of one collection; safe to share across threads.

    The store and the model are made from `settings` when first used, unless given (a model is
    loaded once per process)."""

    def __init__(
        self,
        settings: IndexSettings,
        *,
        store: ChunkStore | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self._summary: tuple[str, CorpusSummary] | None = None  # (keyword fingerprint, summary)
        # When an ingest through this object (a feed watcher's poll among them) last finished
        # with no bad input: epoch seconds, None before the first. Shown as "updated ... ago".
        self.last_updated: float | None = None
        if store is not None:
            self.__dict__["store"] = store
        if embedder is not None:
            self.__dict__["embedder"] = embedder

    @cached_property
    def store(self) -> ChunkStore:
        return ChunkStore(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings)

    def ingest(
        self,
        paths: Iterable[Path | str],
        *,
        fmt: str | None = None,
        fields: Mapping[str, str] | None = None,
        vector_cache: VectorCache | None = None,
        progress: bool = True,
        fetcher: Fetcher | None = None,
    ) -> IngestReport:
        """Add the articles under `paths`: unchanged ones cost nothing, changed ones replace.

        An http(s) URL among them is a feed or an article page, fetched politely from that
        server only (see `index.fetch`); by `fetcher` when given (left open: the caller's)."""
        from index.fetch import VALIDATORS_FILE, Fetcher
        from index.web_pages import allowed_hosts, is_url, web_addresses

        given = list(paths)
        urls = [str(item) for item in given if isinstance(item, str) and is_url(item)]
        state = self.settings.storage_dir / VALIDATORS_FILE
        opened = (
            contextlib.nullcontext(fetcher)
            if fetcher
            else Fetcher(allowed_hosts(urls), state_file=state)
        )
        with opened as web:
            report = ingest(
                web_addresses(given, web),
                settings=self.settings,
                store=self.store,
                embedder=self.embedder,
                fmt=fmt,
                fields=fields,
                vector_cache=vector_cache,
                progress=progress,
            )
            # Only now that the articles are stored may the next run skip them on a 304.
            web.save()
        if not report.issues:
            self.last_updated = time.time()
        return report

    def ready_to_ingest(self) -> None:
        """Load now what the first ingest would (the stored articles' near-copy signatures,
        and the MinHash library): an app that takes articles while it serves does this at
        start, so that its first article is searchable as soon as the next."""
        from index.pipeline import keep_syndication, load_syndication
        from index.syndication import signature

        signature("")
        self.store.sync_keyword_index()
        keep_syndication(self.store, load_syndication(self.store))

    def settle(self) -> None:
        """Wait for index upkeep this process started (a keyword merge) to end; a process
        about to exit calls this. What was written is searchable before: nothing waits."""
        store = self.__dict__.get("store")
        if store is not None:
            store.keyword.settle()

    def ensure_demo(
        self, *, progress: bool = True, corpus: str | None = None
    ) -> IngestReport | None:
        """Ingest a bundled demo corpus if the collection is empty (None when it is not).

        `corpus` (a name in `index.demo.DEMO_CORPORA`) defaults to this collection's demo."""
        from index.demo import demo_to_build, shipped_vectors

        if not self.is_empty():
            return None
        chosen = demo_to_build(self.settings.collection, corpus)
        return self.ingest(
            chosen.files, vector_cache=shipped_vectors(chosen, self.embedder), progress=progress
        )

    def collections(self) -> list[str]:
        """The names of the store's collections that hold articles, this one's among them."""
        return self.store.collection_names()

    def delete(self, article_ids: Iterable[str]) -> int:
        """Delete articles by id; the number of chunks removed."""
        return delete_articles(list(article_ids), store=self.store)

    def check(self, *, vectors: bool = True) -> CheckReport:
        """Whether every article is stored whole and the keyword index matches Chroma."""
        return check_store(self.store, vectors=vectors)

    def repair(self, report: CheckReport | None = None) -> RepairReport:
        """Drop the chunks of broken articles and rebuild the keyword index from Chroma."""
        return repair_store(self.store, report)

    def count(self) -> int:
        """Chunks in the collection."""
        return self.store.count()

    def keyword_count(self) -> int:
        """Chunks in this process's keyword index (equal to `count()` once it is in sync)."""
        return len(self.store.keyword)

    def refresh(self) -> None:
        """Bring the keyword index up to date with Chroma now, not at the next sync interval."""
        self.store.sync_keyword_index(force=True)

    def is_empty(self) -> bool:
        return self.store.count() == 0

    def articles(self) -> list[ArticleInfo]:
        """Every stored article, in the order their first chunks were indexed."""
        self.store.sync_keyword_index()
        state = self.store.keyword.snapshot()  # read by columns: no metadata dict per chunk
        ids = [str(a or "") for a in state.column("article_id")]
        chunks = Counter(ids)
        first = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))
        rows = sorted(first.values())
        fields = {
            key: state.column(key) for key in ("title", "source", "published", "url")
        }  # fmt: skip
        return [
            ArticleInfo(
                id=ids[row],
                title=str(fields["title"][row] or ""),
                source=str(fields["source"][row] or ""),
                published=str(fields["published"][row] or ""),
                url=str(fields["url"][row] or ""),
                chunks=chunks[ids[row]],
            )
            for row in rows
        ]

    def chunk_texts(self) -> list[str]:
        """The text of every chunk (for picking example questions the archive can answer)."""
        self.store.sync_keyword_index()
        return [record.text for record in self.store.keyword.records]

    def outlets(self) -> list[tuple[str, int]]:
        """Outlet names with their article counts, most first."""
        return self.store.outlets()

    def summary(self) -> CorpusSummary:
        """Articles, chunks, outlets, the date range and the titles, newest first.

        Made again only when the corpus changed: health checks ask often."""
        self.store.sync_keyword_index()
        state, chunks = self.store.keyword.fingerprint, self.count()
        if self._summary and self._summary[0] == state and self._summary[1].chunks == chunks:
            return self._summary[1]
        articles = self.articles()
        dates = sorted(a.published for a in articles if a.published)
        summary = CorpusSummary(
            articles=len(articles),
            chunks=chunks,
            outlets=self.outlets(),
            first_date=dates[0] if dates else None,
            last_date=dates[-1] if dates else None,
            titles=sorted(((a.published, a.title) for a in articles), reverse=True),
        )
        self._summary = (state, summary)
        return summary

    @property
    def last_summary(self) -> CorpusSummary | None:
        """The latest `summary` (None before the first): what is known while the store is down."""
        return self._summary[1] if self._summary else None
