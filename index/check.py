"""Consistency check of a store (Chroma and the derived keyword index), and its repair."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index.keyword import fingerprint
from index.store import ChunkStore

_CHUNK_ID = re.compile(r"^(?P<article>.+)-(?P<index>\d{4,})$")
_REQUIRED = ("article_id", "article_hash", "body_hash", "chunk", "n_chunks", "title")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a store; errors break answers or consistency, warnings do not."""

    kind: str
    detail: str
    article_id: str | None = None
    chunk_id: str | None = None
    error: bool = True

    def __str__(self) -> str:
        where = f"article {self.article_id}: " if self.article_id else ""
        return f"{'error' if self.error else 'warning'}: {self.kind}: {where}{self.detail}"


@dataclass
class CheckReport:
    """What `check_store` found."""

    chunks: int = 0
    articles: int = 0
    chroma_fingerprint: str = ""
    keyword_fingerprint: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.error]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def broken_articles(self) -> list[str]:
        """Articles whose chunks must go so that a re-ingest writes them whole."""
        return sorted({p.article_id for p in self.errors if p.article_id})

    def summary(self) -> str:
        warnings = len(self.problems) - len(self.errors)
        state = "consistent" if self.ok else f"{len(self.errors)} error(s)"
        return f"{self.articles} articles, {self.chunks} chunks: {state}" + (
            f", {warnings} warning(s)" if warnings else ""
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "articles": self.articles,
            "chunks": self.chunks,
            "chroma_fingerprint": self.chroma_fingerprint,
            "keyword_fingerprint": self.keyword_fingerprint,
            "errors": [str(p) for p in self.errors],
            "warnings": [str(p) for p in self.problems if not p.error],
            "broken_articles": self.broken_articles,
        }


@dataclass
class RepairReport:
    """What `repair_store` changed, and the check that followed."""

    deleted_articles: list[str]
    deleted_chunks: int
    keyword_rebuilt: bool
    after: CheckReport
    vectors_saved: int = 0  # chunks whose vectors were saved with the keyword index

    def as_dict(self) -> dict[str, Any]:
        return {
            "deleted_articles": self.deleted_articles,
            "deleted_chunks": self.deleted_chunks,
            "keyword_rebuilt": self.keyword_rebuilt,
            "vectors_saved": self.vectors_saved,
            "after": self.after.as_dict(),
        }


def check_store(store: ChunkStore, *, vectors: bool = True) -> CheckReport:
    """Check every chunk and article in Chroma, and the keyword index against them.

    Errors: a chunk without the metadata ingest writes, or whose id does not name its article
    and index; an article whose chunks are not exactly 0..n_chunks-1 of one version (an
    interrupted write); a chunk without a vector (with `vectors`); a persisted keyword index
    that is missing, unreadable or built from another state of Chroma.
    Warnings: two articles with one body (an update may give an article another's text);
    chunks whose vectors the keyword index does not hold (searches ask Chroma for them)."""
    ids, metas = store.iter_metadata()
    report = CheckReport(chunks=len(ids), chroma_fingerprint=fingerprint(ids, metas))
    by_article: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for chunk_id, meta in zip(ids, metas, strict=True):
        owner = _owner(chunk_id, meta)
        missing = [name for name in _REQUIRED if name not in meta]
        if missing:
            report.problems.append(
                Problem(
                    "malformed chunk", f"{chunk_id} lacks {', '.join(missing)}", owner, chunk_id
                )
            )
            continue
        index = meta["chunk"]
        if not isinstance(index, int) or chunk_id != f"{meta['article_id']}-{index:04d}":
            report.problems.append(
                Problem(
                    "malformed chunk",
                    f"id {chunk_id} does not name its article and index",
                    owner,
                    chunk_id,
                )
            )
            continue
        by_article[str(meta["article_id"])].append((chunk_id, meta))
    report.articles = len(by_article)
    body_owners: dict[str, set[str]] = defaultdict(set)
    for article_id, chunks in sorted(by_article.items()):
        problem = _article_problem(chunks)
        if problem:
            report.problems.append(Problem("incomplete article", problem, article_id))
        body_owners[str(chunks[0][1]["body_hash"])].add(article_id)
    for body_hash, owners in sorted(body_owners.items()):
        if len(owners) > 1:
            report.problems.append(
                Problem(
                    "shared body",
                    f"articles {', '.join(sorted(owners))} have one text (body {body_hash})",
                    error=False,
                )
            )
    if vectors:
        report.problems += _vector_problems(store, ids, metas)
    report.problems += _keyword_problems(store, report)
    return report


def _owner(chunk_id: str, meta: dict[str, Any]) -> str | None:
    if isinstance(meta.get("article_id"), str):
        return str(meta["article_id"])
    match = _CHUNK_ID.match(chunk_id)
    return match["article"] if match else None


def _article_problem(chunks: list[tuple[str, dict[str, Any]]]) -> str | None:
    hashes = {str(meta["article_hash"]) for _, meta in chunks}
    totals = {meta["n_chunks"] for _, meta in chunks}
    indexes = sorted(int(meta["chunk"]) for _, meta in chunks)
    if len(hashes) > 1:
        return f"chunks of {len(hashes)} versions ({', '.join(sorted(hashes))})"
    if len(totals) > 1:
        return f"chunks disagree on the chunk count ({sorted(totals)})"
    (total,) = totals
    if indexes != list(range(int(total))):
        have = set(indexes)
        absent = [i for i in range(int(total)) if i not in have]
        extra = sorted(i for i in have if i >= int(total))
        parts = [f"{len(indexes)} of {total} chunks"]
        if absent:
            parts.append(f"missing {_ranges(absent)}")
        if extra:
            parts.append(f"beyond the count {_ranges(extra)}")
        return "; ".join(parts)
    return None


def _ranges(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:8])
    return shown + (f" and {len(numbers) - 8} more" if len(numbers) > 8 else "")


def _vector_problems(
    store: ChunkStore, ids: list[str], metas: list[dict[str, Any]]
) -> list[Problem]:
    problems = []
    found = store.embeddings(ids)
    sizes = {len(vector) for vector in found.values()}
    size = max(sizes, key=lambda s: sum(len(v) == s for v in found.values())) if sizes else 0
    for chunk_id, meta in zip(ids, metas, strict=True):
        vector = found.get(chunk_id)
        if vector is None:
            reason = "has no vector"
        elif len(vector) != size:
            reason = f"has a vector of {len(vector)} numbers, not {size}"
        elif not np.all(np.isfinite(vector)):
            reason = "has a vector that is not finite"
        else:
            continue
        problems.append(
            Problem(
                "missing vector", f"chunk {chunk_id} {reason}", _owner(chunk_id, meta), chunk_id
            )
        )
    return problems


def _keyword_problems(store: ChunkStore, report: CheckReport) -> list[Problem]:
    keyword = store.keyword
    saved = keyword.saved_fingerprint()
    report.keyword_fingerprint = saved or ""
    if saved is None:
        return [Problem("keyword index", f"no saved keyword index at {keyword.directory}")]
    if saved != report.chroma_fingerprint:
        return [
            Problem(
                "keyword index",
                f"stale: built from state {saved[:12]}, Chroma is {report.chroma_fingerprint[:12]}",
            )
        ]
    why = keyword.check_persisted(report.chroma_fingerprint)
    if why:
        return [Problem("keyword index", f"the saved folder does not load: {why}")]
    missing = _unsaved_vectors(store)
    if missing:
        detail = (
            f"{missing} chunks' vectors are not saved with it: searches fetch them from Chroma,"
            " slower at scale (--repair saves them)"
        )
        return [Problem("keyword index", detail, error=False)]
    return []


def _unsaved_vectors(store: ChunkStore) -> int:
    """How many live chunks of the keyword index lie in segments without a vectors file."""
    store.sync_keyword_index()
    state = store.keyword.snapshot()
    return sum(
        int(live.sum())
        for segment, live in zip(state.segments, state.alive, strict=True)
        if segment.vectors is None
    )


def repair_store(store: ChunkStore, report: CheckReport | None = None) -> RepairReport:
    """Delete the chunks of every broken article (a re-ingest writes them whole again), delete
    malformed chunks, and rebuild the keyword index from Chroma."""
    report = report or check_store(store)
    broken = report.broken_articles
    deleted = store.delete_articles(broken)
    # Malformed chunks may name no article, or another one than their id says.
    left = store.existing_chunks(sorted({p.chunk_id for p in report.errors if p.chunk_id}))
    store.delete_chunks(left)
    deleted += len(left)
    rebuild = bool(deleted) or any(p.kind == "keyword index" for p in report.errors)
    if rebuild:
        store.rebuild_keyword_index()  # which saves the vectors with it
        saved = 0
    else:
        store.sync_keyword_index()
        saved = store.keyword.add_vectors(store.embeddings)
    return RepairReport(broken, deleted, rebuild, check_store(store), saved)
