"""`eval retrieval` on MultiHop-RAG: per-query results, their summaries, a llama-index baseline."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from assistant.config import Settings
from evaluation import metrics
from evaluation.corpus import build_eval_index, eval_index_settings, shipped_vectors
from evaluation.metrics import DEPTH
from evaluation.questions import NULL_TYPE, Question, load_questions
from index.articles import Article
from index.embedding import Embedder, VectorCache, text_key

RECALL_KS = (4, 6, 10)


class Hit(Protocol):
    """What a retriever returns for each chunk (`Passage` fits)."""

    @property
    def chunk_id(self) -> str: ...
    @property
    def article_id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def published(self) -> str: ...


Search = Callable[[str], Sequence[Hit]]


@dataclass
class RetrievalResult:
    """One query's retrieval: what came back, where each gold fact first appeared, how long."""

    query_id: str
    question: str
    question_type: str
    facts: list[str]
    fact_ranks: list[int | None]
    chunks: list[dict[str, str]]
    seconds: float

    def scores(self) -> dict[str, float]:
        ranks, facts = self.fact_ranks, self.facts
        out = {
            "Hits@4": metrics.hits_at(ranks, 4),
            "Hits@10": metrics.hits_at(ranks, 10),
            "MRR@10": metrics.reciprocal_rank(ranks, 10),
            "MAP@10": metrics.average_precision(ranks, facts, 10),
        }
        for k in RECALL_KS:
            out[f"recall@{k}"] = metrics.evidence_recall(ranks, facts, k)
        for k in RECALL_KS:
            out[f"complete@{k}"] = metrics.evidence_complete(ranks, facts, k)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "scores": self.scores()}


def retrieve_all(
    queries: Sequence[Question],
    search: Search,
    *,
    desc: str = "retrieve",
    progress: bool = True,
) -> list[RetrievalResult]:
    """Run `search` on every query with gold facts (null queries are skipped, as upstream)."""
    results: list[RetrievalResult] = []
    for q in tqdm(
        [q for q in queries if q.question_type != NULL_TYPE and q.facts],
        desc=desc,
        unit="query",
        disable=not progress,
    ):
        started = time.perf_counter()
        hits = list(search(q.question))[:DEPTH]
        seconds = time.perf_counter() - started
        results.append(
            RetrievalResult(
                query_id=q.id,
                question=q.question,
                question_type=q.question_type,
                facts=q.facts,
                fact_ranks=metrics.fact_ranks([h.text for h in hits], q.facts),
                chunks=[
                    {
                        "chunk_id": h.chunk_id,
                        "article_id": h.article_id,
                        "source": h.source,
                        "published": h.published,
                        "title": h.title,
                        "text": h.text,
                    }
                    for h in hits
                ],
                seconds=seconds,
            )
        )
    return results


def summarise_retrieval(results: Sequence[RetrievalResult]) -> dict[str, Any]:
    """Mean scores overall and per question type, and latency percentiles."""

    def block(rows: Sequence[RetrievalResult]) -> dict[str, Any]:
        per_query = [r.scores() for r in rows]
        names = per_query[0].keys() if per_query else []
        out: dict[str, Any] = {"queries": len(rows)}
        out.update({n: metrics.mean([s[n] for s in per_query]) for n in names})
        return out

    types = sorted({r.question_type for r in results})
    latencies = [r.seconds * 1000 for r in results]
    return {
        "overall": block(results),
        "by_type": {t: block([r for r in results if r.question_type == t]) for t in types},
        "latency_ms": {
            "p50": metrics.percentile(latencies, 50),
            "p95": metrics.percentile(latencies, 95),
            "mean": metrics.mean(latencies),
        },
    }


TABLE_METRICS = (
    "Hits@4",
    "Hits@10",
    "MRR@10",
    "MAP@10",
    "recall@4",
    "recall@6",
    "recall@10",
    "complete@4",
    "complete@6",
    "complete@10",
)


def format_table(ours: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """A plain-text table: each metric, overall and per type, ours beside the baseline."""
    groups = [("overall", ours["overall"], (baseline or {}).get("overall"))]
    groups += [
        (name, block, (baseline or {}).get("by_type", {}).get(name))
        for name, block in ours["by_type"].items()
    ]
    lines = []
    for name, block, base in groups:
        lines.append(f"{name} ({block['queries']} queries)")
        header = f"  {'metric':<12} {'ours':>7}"
        if base:
            header += f" {'baseline':>9} {'ratio':>7}"
        lines.append(header)
        for metric in TABLE_METRICS:
            row = f"  {metric:<12} {block[metric]:>7.4f}"
            if base:
                ratio = f"{block[metric] / base[metric]:>6.2f}x" if base[metric] else "      -"
                row += f" {base[metric]:>9.4f} {ratio}"
            lines.append(row)
    lat = ours["latency_ms"]
    line = f"latency per query: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms"
    if baseline:
        b = baseline["latency_ms"]
        line += f"  (baseline p50 {b['p50']:.1f} ms, p95 {b['p95']:.1f} ms)"
    lines.append(line)
    return "\n".join(lines)


# The baseline: plain llama-index ---------------------------------------------------------------


def bundled_tiktoken_encoding(name: str = "cl100k_base") -> Any:
    """tiktoken's encoding, read from the copy llama-index-core ships (never downloaded)."""
    import llama_index.core
    import tiktoken

    cache = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        return tiktoken.get_encoding(name)
    finally:
        if previous is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


@dataclass(frozen=True, slots=True)
class BaselineHit:
    chunk_id: str
    article_id: str
    text: str
    title: str
    source: str
    published: str
    score: float


@dataclass
class LlamaIndexBaseline:
    """The plain llama-index pipeline: SentenceSplitter chunks of 256 tiktoken tokens, the same
    MiniLM model, dense top-k from a VectorStoreIndex, nothing else."""

    embedder: Embedder
    chunk_size: int = 256
    # llama-index's general default overlap; SentenceSplitter's own default (200 of 256 tokens)
    # would make 4.5x as many chunks, too many to embed on a laptop.
    chunk_overlap: int = 20
    index: Any = field(default=None, repr=False)

    def build(
        self,
        articles: Iterable[Article],
        *,
        caches: Sequence[Path] = (),
        save_to: Path | None = None,
        progress: bool = True,
    ) -> None:
        """Chunk and embed the articles (vectors from the first of `caches` that has them all,
        else from the model, then saved to `save_to`), and build the vector index."""
        from llama_index.core import Document, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.core.schema import MetadataMode

        splitter = SentenceSplitter(
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            tokenizer=bundled_tiktoken_encoding().encode,
        )
        documents = [
            Document(
                text=a.body,
                doc_id=a.id,
                metadata={"title": a.title, "source": a.source, "published_at": a.published},
            )
            for a in articles
        ]
        nodes = splitter.get_nodes_from_documents(documents)
        texts = [node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]
        keys = [text_key(self.embedder.model_id, t) for t in texts]
        cache = VectorCache()
        for path in caches:
            if path.exists():
                cache = VectorCache.load(path)
                if all(cache.get(key) is not None for key in keys):
                    break
        complete = all(cache.get(key) is not None for key in keys)
        vectors = cache.embed_with_cache(self.embedder, texts, progress=progress)
        if not complete and save_to is not None:
            save_to.parent.mkdir(parents=True, exist_ok=True)
            VectorCache.from_pairs(dict(zip(keys, vectors, strict=True))).save(save_to)
        for node, vector in zip(nodes, vectors, strict=True):
            node.embedding = vector.tolist()
        self.index = VectorStoreIndex(nodes, embed_model=_embedding_adapter(self.embedder))

    def search(self, question: str, k: int = DEPTH) -> list[BaselineHit]:
        retriever = self.index.as_retriever(similarity_top_k=k)
        hits = []
        for scored in retriever.retrieve(question):
            node, meta = scored.node, scored.node.metadata
            hits.append(
                BaselineHit(
                    chunk_id=node.node_id,
                    article_id=str(node.ref_doc_id or ""),
                    text=node.get_content(),
                    title=str(meta.get("title", "")),
                    source=str(meta.get("source", "")),
                    published=str(meta.get("published_at", "")),
                    score=float(scored.score or 0.0),
                )
            )
        return hits


def _embedding_adapter(embedder: Embedder) -> Any:
    """The project's Embedder as a llama-index embedding model (queries only are embedded)."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class MiniLMEmbedding(BaseEmbedding):
        _embedder: Embedder = PrivateAttr()

        def __init__(self, model: Embedder) -> None:
            super().__init__(model_name=model.model_path)
            self._embedder = model

        def _get_query_embedding(self, query: str) -> list[float]:
            return [float(x) for x in self._embedder.embed_query(query)]

        def _get_text_embedding(self, text: str) -> list[float]:
            return [float(x) for x in self._embedder.embed([text])[0]]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return np.asarray(self._embedder.embed(texts)).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return MiniLMEmbedding(embedder)


# One evaluation run ----------------------------------------------------------------------------


@dataclass
class RetrievalRun:
    """Everything one `eval retrieval` run measured, ready to print and to save."""

    corpus: str
    queries: str
    settings: dict[str, Any]
    results: list[RetrievalResult]
    summary: dict[str, Any]
    baseline_results: list[RetrievalResult] = field(default_factory=list)
    baseline_summary: dict[str, Any] | None = None

    def table(self) -> str:
        return format_table(self.summary, self.baseline_summary)

    def save(self, folder: Path) -> list[Path]:
        """Write summary.json (both systems) and one JSON line a query for each system."""
        folder.mkdir(parents=True, exist_ok=True)
        summary = folder / "summary.json"
        summary.write_text(
            json.dumps(
                {
                    "corpus": self.corpus,
                    "queries": self.queries,
                    "settings": self.settings,
                    "ours": self.summary,
                    "baseline": self.baseline_summary,
                },
                indent=2,
            )
        )
        written = [summary]
        for name, rows in (("ours", self.results), ("baseline", self.baseline_results)):
            if rows:
                path = folder / f"queries-{name}.jsonl"
                with path.open("w", encoding="utf-8") as out:
                    for row in rows:
                        out.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
                written.append(path)
        return written


def run_retrieval_eval(
    *,
    corpus: Path,
    queries_path: Path,
    settings: Settings,
    embedder: Embedder,
    limit: int | None = None,
    baseline: bool = True,
    progress: bool = True,
    retriever_options: Any = None,
) -> RetrievalRun:
    """Index the corpus (or reuse its index), then retrieve for every query with the product's
    retriever and, beside it, the plain llama-index baseline."""
    from assistant.retrieve import Retriever
    from index.loaders import load_paths

    queries = load_questions(queries_path, require_answers=False).questions[:limit]
    own = eval_index_settings(settings, corpus, model_id=embedder.model_id)
    store = build_eval_index(corpus, settings=own, embedder=embedder, progress=progress)
    retriever = Retriever(own, store=store, embedder=embedder, options=retriever_options)
    search_k = DEPTH

    def search(question: str) -> Sequence[Hit]:
        return retriever.search(question, k=search_k)

    search("warm-up: load the indexes before timing")
    results = retrieve_all(queries, search, desc="ours", progress=progress)
    run = RetrievalRun(
        corpus=str(corpus),
        queries=str(queries_path),
        settings={
            "storage": str(own.storage_dir),
            "chunk_tokens": own.chunk_tokens,
            "chunk_overlap": own.chunk_overlap,
            "model": embedder.model_id,
            "retriever": retriever.describe(),
        },
        results=results,
        summary=summarise_retrieval(results),
    )
    if baseline:
        articles = [a for a in load_paths([corpus]) if isinstance(a, Article)]
        plain = LlamaIndexBaseline(embedder)
        saved = own.storage_dir / f"vectors-baseline-{embedder.model_id}.npz"
        shipped = shipped_vectors(corpus, embedder.model_id, kind="baseline")
        plain.build(articles, caches=(shipped, saved), save_to=saved, progress=progress)
        plain.search("warm-up")
        run.baseline_results = retrieve_all(
            queries, plain.search, desc="baseline", progress=progress
        )
        run.baseline_summary = summarise_retrieval(run.baseline_results)
        run.settings["baseline"] = {
            "splitter": "llama-index SentenceSplitter (tiktoken cl100k_base)",
            "chunk_size": plain.chunk_size,
            "chunk_overlap": plain.chunk_overlap,
            "retrieval": "VectorStoreIndex dense top-k",
        }
    return run
