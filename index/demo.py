"""The bundled demo corpus and its precomputed vectors."""

from __future__ import annotations

from pathlib import Path

from news_assistant_data import DEMO_DIR

from index.config import IndexSettings
from index.embedding import Embedder, VectorCache
from index.pipeline import IngestReport, ingest
from index.store import ChunkStore

DEMO_FILES = (
    DEMO_DIR / "whitehouse-2022.jsonl",
    DEMO_DIR / "tass-2022-01-28-lavrov-security-guarantees.txt",
)


def demo_vectors_path(embedder: Embedder) -> Path:
    return DEMO_DIR / f"vectors-{embedder.model_id}.npz"


def ensure_demo_index(
    *, settings: IndexSettings, store: ChunkStore, embedder: Embedder, progress: bool = True
) -> IngestReport | None:
    """Ingest the demo corpus if the store is empty; vectors come from the shipped cache."""
    if store.count() > 0:
        return None
    cache_path = demo_vectors_path(embedder)
    cache = VectorCache.load(cache_path) if cache_path.exists() else None
    return ingest(
        DEMO_FILES,
        settings=settings,
        store=store,
        embedder=embedder,
        vector_cache=cache,
        progress=progress,
    )


def build_vector_cache(
    paths: list[Path], *, settings: IndexSettings, embedder: Embedder, progress: bool = True
) -> VectorCache:
    """Embed every chunk of the articles under `paths`, as ingest would, into a cache."""
    from index.embedding import text_key
    from index.loaders import load_paths
    from index.pipeline import IngestReport, chunk_article, dedupe, embedding_text

    articles = dedupe(load_paths(paths), IngestReport())
    texts = [
        embedding_text(article, chunk)
        for article in articles
        for chunk in chunk_article(article, embedder=embedder, settings=settings)
    ]
    with embedder.bulk_threads():
        vectors = embedder.embed(texts, progress=progress)
    return VectorCache.from_pairs(
        {text_key(embedder.model_id, t): v for t, v in zip(texts, vectors, strict=True)}
    )
