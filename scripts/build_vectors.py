"""Precompute the vectors shipped with a bundled corpus (argument: demo or multihop)."""

from __future__ import annotations

import sys

from news_assistant_data import DEMO_DIR, MULTIHOP_DIR

from index.config import IndexSettings, quiet_offline_environment
from index.demo import DEMO_FILES, build_vector_cache
from index.embedding import Embedder

CORPORA = {
    "demo": (list(DEMO_FILES), DEMO_DIR),
    "multihop": ([MULTIHOP_DIR / "corpus.json"], MULTIHOP_DIR),
}

if __name__ == "__main__":
    quiet_offline_environment()
    paths, folder = CORPORA[sys.argv[1]]
    settings = IndexSettings()
    embedder = Embedder(settings)
    cache = build_vector_cache(paths, settings=settings, embedder=embedder)
    out = folder / f"vectors-{embedder.model_id}.npz"
    cache.save(out)
    print(f"{len(cache)} vectors -> {out}")
