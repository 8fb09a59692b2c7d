"""The bundled demo corpora, each built into its own collection from its precomputed vectors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from news_assistant_data import DEMO_DIR, MULTIHOP_DIR

from index.config import IndexSettings
from index.embedding import Embedder, VectorCache
from index.pipeline import IngestReport

DEMO_FILES = (
    DEMO_DIR / "whitehouse-2022.jsonl",
    DEMO_DIR / "tass-2022-01-28-lavrov-security-guarantees.txt",
)


@dataclass(frozen=True, slots=True)
class DemoCorpus:
    """A corpus shipped with the package, the collection it is built into, and its vectors."""

    name: str
    collection: str
    label: str  # what the page's corpus picker shows
    files: tuple[Path, ...]
    folder: Path  # where its `vectors-<model>.npz` lives

    def vectors_path(self, embedder: Embedder) -> Path:
        return self.folder / f"vectors-{embedder.model_id}.npz"


DEFAULT_DEMO = "news"
DEMO_CORPORA = {
    corpus.name: corpus
    for corpus in (
        DemoCorpus(
            "news",
            "news",
            "White House and TASS, Jan–Feb 2022",
            DEMO_FILES,
            DEMO_DIR,
        ),
        DemoCorpus(
            "multihop-2023",
            "multihop-2023",
            "MultiHop-RAG: 49 outlets, Sep–Dec 2023",
            (MULTIHOP_DIR / "corpus.json",),
            MULTIHOP_DIR,
        ),
    )
}


def demo_corpus(name: str) -> DemoCorpus:
    """The demo corpus called `name`; a ValueError naming the choices otherwise."""
    try:
        return DEMO_CORPORA[name]
    except KeyError:
        choices = ", ".join(DEMO_CORPORA)
        raise ValueError(f"no demo corpus {name!r}; choose one of: {choices}") from None


def demo_for_collection(collection: str) -> DemoCorpus | None:
    """The demo corpus that is built into `collection`, if one is."""
    return next((c for c in DEMO_CORPORA.values() if c.collection == collection), None)


def demo_to_build(collection: str, corpus: str | None = None) -> DemoCorpus:
    """The demo corpus `corpus`, else the one built into `collection`, else the default."""
    if corpus:
        return demo_corpus(corpus)
    return demo_for_collection(collection) or DEMO_CORPORA[DEFAULT_DEMO]


def shipped_vectors(corpus: DemoCorpus, embedder: Embedder) -> VectorCache | None:
    """The vectors shipped for `corpus` under this model, so building it embeds nothing."""
    path = corpus.vectors_path(embedder)
    return VectorCache.load(path) if path.exists() else None


def build_vector_cache(
    paths: list[Path], *, settings: IndexSettings, embedder: Embedder, progress: bool = True
) -> VectorCache:
    """Embed every chunk of the articles under `paths`, as ingest would, into a cache."""
    from index.embedding import text_key
    from index.loaders import load_paths
    from index.pipeline import chunk_article, dedupe, embedding_text

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
