"""The evaluation's own index of a benchmark corpus: where it lives, building it, an engine."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from news_assistant_data import MULTIHOP_DIR

from assistant.config import Settings
from assistant.engine import Engine
from evaluation.questions import Question
from index.embedding import Embedder, VectorCache
from index.store import ChunkStore

DEFAULT_CORPUS = MULTIHOP_DIR / "corpus.json"
DEMO = "demo"  # what --corpus calls the bundled demo corpus (White House and TASS, 2022)


@dataclass(frozen=True, slots=True)
class EvalCorpus:
    """The articles an evaluation indexes (files or folders), and vectors shipped for them."""

    paths: tuple[Path, ...]
    label: str
    vectors: Path | None = None  # a `vectors-<model>.npz`, when one ships with them

    @classmethod
    def demo(cls, model_id: str) -> EvalCorpus:
        """The bundled demo corpus, as `news-assistant demo` builds it."""
        from index.demo import DEFAULT_DEMO, DEMO_CORPORA

        chosen = DEMO_CORPORA[DEFAULT_DEMO]
        vectors = chosen.folder / f"vectors-{model_id}.npz"
        return cls(chosen.files, f"{DEMO} ({chosen.label})", vectors)

    @classmethod
    def of(cls, corpus: Path | str, model_id: str) -> EvalCorpus:
        """`demo`, or a file or folder of articles (vectors beside it, named by model)."""
        if str(corpus) == DEMO:
            return cls.demo(model_id)
        path = Path(corpus)
        return cls((path,), str(path), shipped_vectors(path, model_id))


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


def _digest(path: Path) -> str:
    return _folder_digest(path) if path.is_dir() else _file_digest(path)


def eval_index_settings(
    settings: Settings, corpus: Path | Sequence[Path], *, model_id: str
) -> Settings:
    """Settings for the evaluation's own index of `corpus` (a file or folder, or several): a
    folder named by the corpus's contents, the model and the chunking settings, so a second run
    reuses it and a change builds a new one. `eval retrieval` and `eval answers` share it."""
    paths = [corpus] if isinstance(corpus, Path) else list(corpus)
    contents = "\x1e".join(_digest(path) for path in paths)
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
    corpus: Path | EvalCorpus, *, settings: Settings, embedder: Embedder, progress: bool = True
) -> ChunkStore:
    """Index `corpus` with the product's pipeline into the evaluation's own store (reused when
    it already holds the corpus), taking vectors from the shipped cache where they match."""
    from index.pipeline import ingest

    if isinstance(corpus, Path):
        corpus = EvalCorpus.of(corpus, embedder.model_id)
    store = ChunkStore(settings)
    cache_path = corpus.vectors
    cache = VectorCache.load(cache_path) if cache_path and cache_path.exists() else None
    ingest(
        list(corpus.paths),
        settings=settings,
        store=store,
        embedder=embedder,
        vector_cache=cache,
        progress=progress,
    )
    return store


def eval_engine(engine: Engine, corpus: Path | EvalCorpus, *, progress: bool = True) -> Engine:
    """An engine over the corpus's evaluation index (built on first use, reused after), with
    the given engine's settings (LLM included) and model."""
    embedder = engine.embedder
    paths = corpus.paths if isinstance(corpus, EvalCorpus) else corpus
    own = eval_index_settings(engine.settings, paths, model_id=embedder.model_id)
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
