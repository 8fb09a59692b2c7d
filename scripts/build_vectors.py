"""Precompute the vectors shipped with a bundled corpus (argument: demo or multihop)."""

from __future__ import annotations

import sys

from index.config import Settings
from index.demo import DATA_DIR, DEMO_FILES, build_vector_cache
from index.embedding import Embedder

CORPORA = {
    "demo": (list(DEMO_FILES), DATA_DIR / "demo"),
    "multihop": ([DATA_DIR / "multihop-rag" / "corpus.json"], DATA_DIR / "multihop-rag"),
}

if __name__ == "__main__":
    paths, folder = CORPORA[sys.argv[1]]
    settings = Settings()
    embedder = Embedder(settings)
    cache = build_vector_cache(paths, settings=settings, embedder=embedder)
    out = folder / f"vectors-{embedder.model_id}.npz"
    cache.save(out)
    print(f"{len(cache)} vectors -> {out}")
