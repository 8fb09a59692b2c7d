"""Ingest: load -> dedupe -> chunk -> embed -> write to Chroma -> keyword index in step."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from index.articles import Article
from index.chunking import Chunk, chunk_text
from index.config import IndexSettings
from index.embedding import Embedder, VectorCache
from index.errors import LoadIssue, LoadNote
from index.loaders import load_paths
from index.store import ArticleState, ChunkStore
from index.syndication import (
    ALSO_KEY,
    Copy,
    SyndicationIndex,
    content_hash_of,
    encode_copies,
    signature,
    signatures_path,
    stored_hash,
)

if TYPE_CHECKING:
    from datasketch import MinHash

# Chunks are written every few model batches (256 at the default batch size): often enough that
# a crash loses little embedding work, seldom enough that Chroma's per-call cost stays small.
_MODEL_BATCHES_PER_WRITE = 8


@dataclass
class IngestReport:
    """What one ingest did, article by article."""

    added: int = 0
    updated: int = 0
    repaired: int = 0  # stored incompletely by an interrupted ingest, and written again
    unchanged: int = 0
    duplicates: int = 0
    syndicated: int = 0  # near-copies of a stored article, recorded on it, not stored again
    chunks_written: int = 0
    issues: list[LoadIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return len(self.issues)

    def summary(self) -> str:
        repaired = f"{self.repaired} repaired, " if self.repaired else ""
        syndicated = f"{self.syndicated} syndicated copies merged, " if self.syndicated else ""
        return (
            f"{self.added} added, {self.updated} updated, {repaired}{self.unchanged} unchanged, "
            f"{self.duplicates} duplicates skipped, {syndicated}"
            f"{self.skipped} bad records skipped; "
            f"{self.chunks_written} chunks written in {self.seconds:.1f}s"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "repaired": self.repaired,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "syndicated": self.syndicated,
            "skipped": self.skipped,
            "chunks_written": self.chunks_written,
            "seconds": round(self.seconds, 3),
            "issues": [str(issue) for issue in self.issues],
            "notes": self.notes,
        }


def chunk_article(article: Article, *, embedder: Embedder, settings: IndexSettings) -> list[Chunk]:
    limit = min(settings.chunk_tokens, embedder.max_tokens)
    return chunk_text(
        article.body,
        count_tokens=embedder.count_tokens,
        max_tokens=limit,
        overlap_tokens=min(settings.chunk_overlap, limit // 2),
    )


def embedding_text(article: Article, chunk: Chunk) -> str:
    """What the model reads for a chunk: the headline gives the passage its context."""
    return f"{article.title}\n{chunk.text}"


def article_metadata(article: Article) -> dict[str, Any]:
    """What every chunk of an article carries; the hashes read the whole body, so once only."""
    return {
        "article_id": article.id,
        "article_hash": article.content_hash,
        "body_hash": article.body_hash,
        "title": article.title,
        "source": article.source,
        "published": article.published,
        "date_int": article.date_int,
        "url": article.url,
        "author": article.author,
        "category": article.category,
    }


def chunk_metadata(
    article: Article, chunk: Chunk, n_chunks: int, *, shared: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A chunk's metadata; pass `shared` (from `article_metadata`) for each chunk of a long one."""
    return {
        **(shared if shared is not None else article_metadata(article)),
        "chunk": chunk.index,
        "n_chunks": n_chunks,
        "start": chunk.start,
        "end": chunk.end,
        "tokens": chunk.tokens,
        **({"sentences": chunk.sentences} if chunk.sentences else {}),
    }


def chunk_id(article: Article, chunk: Chunk) -> str:
    return f"{article.id}-{chunk.index:04d}"


def dedupe(
    records: Iterable[Article | LoadIssue | LoadNote], report: IngestReport
) -> list[Article]:
    """Articles of one run, last version of each id kept, exact copies of a body dropped."""
    by_id: dict[str, Article] = {}
    body_owner: dict[str, str] = {}
    for record in records:
        if isinstance(record, LoadIssue):
            report.issues.append(record)
            continue
        if isinstance(record, LoadNote):
            report.notes.append(str(record))
            continue
        previous = by_id.get(record.id)
        if previous is not None:
            if previous.content_hash == record.content_hash:
                report.duplicates += 1
                continue
            report.notes.append(
                f"{record.origin}: id {record.id} also at {previous.origin} with other text; "
                "kept this later version"
            )
            body_owner.pop(previous.body_hash, None)
        elif body_owner.get(record.body_hash, record.id) != record.id:
            report.duplicates += 1
            continue
        by_id[record.id] = record
        body_owner[record.body_hash] = record.id
    return list(by_id.values())


def ingest(
    paths: Iterable[Path],
    *,
    settings: IndexSettings,
    store: ChunkStore,
    embedder: Embedder,
    fmt: str | None = None,
    fields: Mapping[str, str] | None = None,
    vector_cache: VectorCache | None = None,
    progress: bool = True,
) -> IngestReport:
    """Ingest every article under `paths`; re-running on the same input does no work."""
    started = time.perf_counter()
    store.take_for_writing()
    with store.incremental_keyword():
        report = _ingest(paths, settings, store, embedder, fmt, fields, vector_cache, progress)
    report.seconds = time.perf_counter() - started
    return report


def _ingest(
    paths: Iterable[Path],
    settings: IndexSettings,
    store: ChunkStore,
    embedder: Embedder,
    fmt: str | None,
    fields: Mapping[str, str] | None,
    vector_cache: VectorCache | None,
    progress: bool,
) -> IngestReport:
    report = IngestReport()
    store.sync_keyword_index(force=True)
    syndication = load_syndication(store)
    touched: set[str] = set()  # stored articles whose copies changed
    articles = dedupe(load_paths(paths, fmt=fmt, fields=fields), report)
    cache = vector_cache or VectorCache()
    bar = tqdm(total=len(articles), unit="article", disable=not progress, desc="ingest")
    pending: list[tuple[Article, list[Chunk]]] = []
    replace: list[str] = []
    write_every = settings.embed_batch_size * _MODEL_BATCHES_PER_WRITE

    def flush() -> None:
        report.chunks_written += _write(
            pending, replace, store=store, embedder=embedder, cache=cache
        )
        bar.update(len(pending))
        bar.set_postfix(chunks=report.chunks_written)
        pending.clear()
        replace.clear()

    with embedder.bulk_threads():
        for start in range(0, len(articles), 200):
            batch = articles[start : start + 200]
            states = store.article_states([a.id for a in batch])
            new = [a for a in batch if a.id not in states]
            owners = store.articles_with_body([a.body_hash for a in new])
            for article in batch:
                state = states.get(article.id)
                if _already_stored(article, state, owners, report):
                    bar.update(1)
                    continue
                minhash = signature(article.body)
                if state is None and _merge_copy(article, minhash, syndication, touched, report):
                    bar.update(1)
                    continue
                if state is None:
                    report.added += 1
                else:
                    if content_hash_of(state.article_hash) == article.content_hash:
                        report.repaired += 1
                    else:
                        report.updated += 1
                    replace.append(article.id)
                    if syndication.copies.get(article.id):
                        touched.add(article.id)  # its new chunks are written without them
                syndication.add(article.id, article.content_hash, article.body, minhash)
                pending.append(
                    (article, chunk_article(article, embedder=embedder, settings=settings))
                )
                if sum(len(chunks) for _, chunks in pending) >= write_every:
                    flush()
        if pending or replace:
            flush()
    bar.close()
    for article_id in sorted(touched):
        _write_copies(article_id, syndication, store=store)
    syndication.save()
    store.sync_keyword_index(force=True)
    keep_syndication(store, syndication)
    return report


def _already_stored(
    article: Article, state: ArticleState | None, owners: dict[str, str], report: IngestReport
) -> bool:
    """Whether `article` is stored whole as it is, or its exact text under another id; counted."""
    if (
        state is not None
        and state.complete
        and content_hash_of(state.article_hash) == article.content_hash
    ):
        report.unchanged += 1
        return True
    if state is None and owners.get(article.body_hash, article.id) != article.id:
        report.duplicates += 1
        report.notes.append(
            f"{article.origin}: same text as stored article {owners[article.body_hash]}"
        )
        return True
    return False


def load_syndication(store: ChunkStore) -> SyndicationIndex:
    """The signatures of the stored articles (the keyword index must be in step with Chroma):
    the ones this process's last write left, while the keyword index is still in the state
    that write left it in; else read back (and made where missing) for every stored article.
    The caller owns what comes back: it is kept again only by `keep_syndication`."""
    cached, store.syndication = store.syndication, None
    if cached is not None and cached[0] == store.keyword.state_id:
        return cached[1]
    path = signatures_path(store.settings.keyword_dir, store.settings.collection)
    state = store.keyword.snapshot()
    return SyndicationIndex.for_records(path, state.records, state.column)


def keep_syndication(store: ChunkStore, syndication: SyndicationIndex) -> None:
    """Keep a write's signatures for the next write in this process (see load_syndication)."""
    store.syndication = (store.keyword.state_id, syndication)


def _merge_copy(
    article: Article,
    minhash: MinHash,
    syndication: SyndicationIndex,
    touched: set[str],
    report: IngestReport,
) -> bool:
    """Record a new article on the stored one it is a near-copy of; False if it copies none."""
    before = syndication.copy_owner.get(article.id)
    found = syndication.original_of(article.body, minhash, exclude=article.id)
    if found is None or (before is not None and before != found[0]):
        if before is not None:  # rewritten since: a story of its own, or another's copy
            syndication.forget_copy(article.id)
            touched.add(before)
        if found is None:
            return False
    canonical, similarity = found
    copy = Copy(
        article.id,
        article.content_hash,
        article.source,
        article.title,
        article.url,
        article.published,
    )
    if syndication.record_copy(canonical, copy):
        touched.add(canonical)
        report.syndicated += 1
        report.notes.append(
            f"{article.origin}: syndicated copy of stored article {canonical} "
            f"(shingle similarity {similarity:.2f}); recorded on it"
        )
    else:
        report.unchanged += 1
    return True


def _write_copies(article_id: str, syndication: SyndicationIndex, *, store: ChunkStore) -> None:
    """Put an article's copies in its chunks' metadata, in one write."""
    content = syndication.content_hash(article_id)
    if content is None:
        return  # deleted meanwhile
    copies = syndication.copies.get(article_id, [])
    store.set_article_fields(
        article_id,
        {ALSO_KEY: encode_copies(copies), "article_hash": stored_hash(content, copies)},
    )


def _write(
    pending: list[tuple[Article, list[Chunk]]],
    replace: list[str],
    *,
    store: ChunkStore,
    embedder: Embedder,
    cache: VectorCache,
) -> int:
    ids: list[str] = []
    texts: list[str] = []
    documents: list[str] = []
    metadatas: list[dict[str, Any]] = []
    for article, chunks in pending:
        shared = article_metadata(article)
        for chunk in chunks:
            ids.append(chunk_id(article, chunk))
            texts.append(embedding_text(article, chunk))
            documents.append(chunk.text)
            metadatas.append(chunk_metadata(article, chunk, len(chunks), shared=shared))
    # Boilerplate repeated within an article, or across a feed's copies, is embedded once.
    unique = list(dict.fromkeys(texts))
    unique_vectors = cache.embed_with_cache(embedder, unique)
    row = {text: i for i, text in enumerate(unique)}
    vectors = unique_vectors[[row[text] for text in texts]]
    store.write(
        ids=ids, vectors=vectors, documents=documents, metadatas=metadatas, replace_articles=replace
    )
    return len(ids)


def delete_articles(article_ids: list[str], *, store: ChunkStore) -> int:
    """Delete articles by id; the keyword index follows.

    Deleting a stored article removes the records of its syndicated copies with it (their texts
    were never stored): ingest a copy again and it is stored as the story's new original.
    Deleting a copy's id removes its record from the stored article."""
    store.take_for_writing()
    with store.incremental_keyword():
        return _delete_articles(article_ids, store)


def _delete_articles(article_ids: list[str], store: ChunkStore) -> int:
    store.sync_keyword_index(force=True)
    syndication = load_syndication(store)
    owners = {syndication.forget_copy(a) for a in article_ids} - {None}
    for article_id in article_ids:
        syndication.discard(article_id)
    removed = store.delete_articles(article_ids)
    for owner in sorted(o for o in owners if o is not None):
        _write_copies(owner, syndication, store=store)
    syndication.save()
    store.sync_keyword_index(force=True)
    keep_syndication(store, syndication)
    return removed
