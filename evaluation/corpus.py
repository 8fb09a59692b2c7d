"""The evaluation's own index of a benchmark corpus: where it lives, building it, an engine."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from news_assistant_data import MULTIHOP_DIR

from assistant.config import Settings
from assistant.engine import Engine
from evaluation.questions import Question
from index.embedding import Embedder, VectorCache
from index.store import ChunkStore

DEFAULT_CORPUS = MULTIHOP_DIR / "corpus.json"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha1()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha1(path.read_bytes()).digest())
    return digest.hexdigest()


def eval_index_settings(settings: Settings, corpus: Path, *, model_id: str) -> Settings:
    """Settings for the evaluation's own index of `corpus` (a file, or a folder of them): a
    folder named by the corpus's contents, the model and the chunking settings, so a second run
    reuses it and a change builds a new one. `eval retrieval` and `eval answers` share it."""
    contents = _folder_digest(corpus) if corpus.is_dir() else _file_digest(corpus)
    key = "\x1f".join((contents, model_id, str(settings.chunk_tokens), str(settings.chunk_overlap)))
    return settings.with_changes(
        storage_dir=settings.storage_dir / f"eval-{hashlib.sha1(key.encode()).hexdigest()[:12]}",
        collection="eval",
        chroma_host=None,
    )


def shipped_vectors(corpus: Path, model_id: str, *, kind: str = "") -> Path:
    """Where precomputed vectors for a corpus live: next to it, named by model (and kind)."""
    prefix = f"vectors-{kind}-" if kind else "vectors-"
    return corpus.parent / f"{prefix}{model_id}.npz"


def build_eval_index(
    corpus: Path, *, settings: Settings, embedder: Embedder, progress: bool = True
) -> ChunkStore:
    """Index `corpus` with the product's pipeline into the evaluation's own store (reused when
    it already holds the corpus), taking vectors from the shipped cache where they match."""
    from index.pipeline import ingest

    store = ChunkStore(settings)
    cache_path = shipped_vectors(corpus, embedder.model_id)
    cache = VectorCache.load(cache_path) if cache_path.exists() else None
    ingest(
        [corpus],
        settings=settings,
        store=store,
        embedder=embedder,
        vector_cache=cache,
        progress=progress,
    )
    return store


def eval_engine(engine: Engine, corpus: Path, *, progress: bool = True) -> Engine:
    """An engine over the corpus's evaluation index (built on first use, reused after), with
    the given engine's settings (LLM included) and model."""
    embedder = engine.embedder
    own = eval_index_settings(engine.settings, corpus, model_id=embedder.model_id)
    store = build_eval_index(corpus, settings=own, embedder=embedder, progress=progress)
    return Engine(own, embedder=embedder, store=store)


def unmatched_evidence(questions: Sequence[Question], engine: Engine) -> list[str]:
    """Evidence articles (by id, URL or title) that no article of the index is: each would
    count as never cited."""
    engine.index.refresh()
    indexed = [(a.title, a.url, a.id) for a in engine.index.articles()]
    missing = []
    for question in questions:
        for gold in question.evidence:
            if gold.fact or not gold.article_key:
                continue  # a fact is checked in the passages themselves
            if not any(gold.is_article(title=t, url=u, article_id=i) for t, u, i in indexed):
                missing.append(f"{question.id}: {gold.article_key}")
    return missing
