"""Retrieval ablations on MultiHop-RAG (dev split): what each ranking stage adds or costs.

    python bench/retrieval.py [--limit N] [--out bench/results/retrieval.json]

Uses the same evaluation index as `news-assistant eval retrieval`. The question and window
vectors are cached across variants so that the table takes minutes, not an hour; latency is
therefore not measured here (the eval command measures it).

Two oracle rows bound what any ranking of these passages can reach: they are told which
articles hold the gold facts and share the ten passages among them in turns, each article's
passages ranked by the retriever's own scores (whole chunks, or excerpts).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.corpus_view import Cosines
from assistant.retrieve import Passage, RankingOptions, Retriever
from evaluation.corpus import DEFAULT_CORPUS, build_eval_index, eval_index_settings
from evaluation.metrics import squeeze
from evaluation.questions import DEFAULT_QUERIES, Question, load_questions
from evaluation.retrieval import retrieve_all, summarise_retrieval
from index.config import quiet_offline_environment
from index.embedding import Embedder
from index.keyword import keyword_tokens

REPO = Path(__file__).resolve().parent.parent
COLUMNS = ("Hits@4", "Hits@10", "MRR@10", "MAP@10", "recall@10", "complete@6", "complete@10")

FULL = RankingOptions()
NO_FEEDBACK = replace(FULL, feedback_passages=0)
PLAIN = replace(
    NO_FEEDBACK,
    understand=False,
    strip_metadata=False,
    window_words=0,
    coverage_weight=0.0,
    collapse_duplicates=False,
    excerpts=False,
    article_penalty=0.0,
)
VARIANTS: list[tuple[str, RankingOptions]] = [
    ("plain hybrid: keyword + dense, whole question", PLAIN),
    (
        "+ question understanding (outlets, dates, speakers)",
        replace(PLAIN, understand=True),
    ),
    (
        "+ windows of the question",
        replace(
            NO_FEEDBACK,
            coverage_weight=0.0,
            collapse_duplicates=False,
            excerpts=False,
            article_penalty=0.0,
        ),
    ),
    (
        "+ coverage selection",
        replace(NO_FEEDBACK, collapse_duplicates=False, excerpts=False, article_penalty=0.0),
    ),
    (
        "+ near-copy collapse",
        replace(NO_FEEDBACK, excerpts=False, article_penalty=0.0),
    ),
    ("+ excerpts (each article's best sentences)", replace(NO_FEEDBACK, article_penalty=0.0)),
    ("+ 0.1 less per passage already from an article", NO_FEEDBACK),
    ("+ the name shared by the first passages = full", FULL),
    ("full - excerpts (whole chunks)", replace(FULL, excerpts=False)),
    ("full - outlet boost", replace(FULL, outlet_boost=0.0)),
    ("full - date boost", replace(FULL, date_boost=0.0)),
    ("full - speaker boost", replace(FULL, speaker_boost=0.0)),
    ("full + stripping outlet names and dates", replace(FULL, strip_metadata=True)),
    ("full - dense scores (keyword only)", replace(FULL, dense_weight=0.0)),
    ("full + dense scores for the windows too", replace(FULL, window_dense=True)),
    ("full - windows", replace(FULL, window_words=0)),
    ("full + clause probes (split_parts)", replace(FULL, part_probes=True)),
    ("full, windows of 12 words", replace(FULL, window_words=12, window_step=6)),
]


class CachedEmbedder:
    """The real embedder, remembering every text it embedded (variants repeat them)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self._cache.update(zip(missing, self.inner.embed(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


class Oracle:
    """Knows which articles hold each question's gold facts; ranks within them as the
    retriever does, and deals the passages out to those articles in turns."""

    def __init__(
        self, retriever: Retriever, queries: Sequence[Question], *, excerpts: bool
    ) -> None:
        self.retriever, self.excerpts = retriever, excerpts
        self.view = view = retriever.view()
        articles = sorted(set(view.article_of.tolist()))
        flat = {a: squeeze(view.article_text(a, retriever.embedder).text) for a in articles}
        self.gold: dict[str, list[int]] = {}
        for query in queries:
            holders = [
                next((a for a in articles if squeeze(f) in flat[a]), None) for f in query.facts
            ]
            self.gold[query.question] = list(dict.fromkeys(a for a in holders if a is not None))

    def search(self, question: str, k: int = 10) -> list[Passage]:
        view, retriever = self.view, self.retriever
        question_dense = Cosines(view, retriever.embedder.embed([question]))
        keyword = retriever.store.keyword.scores(question)
        keyword = keyword / max(float(keyword.max()), 1e-9)
        terms = keyword_tokens(question)
        idf = retriever.store.keyword.idf(terms)
        queues = []
        for article in self.gold.get(question, []):
            if self.excerpts:
                picker = retriever.excerpt_picker(article, terms, idf, question_dense, view)
                queue = [picker.text(runs) for runs in iter(picker.next_runs, [])]
            else:
                rows = view.rows_of(article)
                dense = question_dense.at(rows)[:, 0]
                relevance = keyword[rows] + retriever.options.dense_weight * dense
                rows = rows[np.argsort(-relevance, kind="stable")]
                queue = [view.records[r].text for r in rows]
            queues.append(queue)
        texts: list[str] = []
        for turn in range(max((len(q) for q in queues), default=0)):
            texts += [q[turn] for q in queues if turn < len(q)]
        return [Passage("", "", t, "", "", "", "", "", 0, 0, 0.0) for t in texts[:k]]


def main() -> None:
    quiet_offline_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retrieval.json")
    args = parser.parse_args()

    settings = Settings()  # type: ignore[call-arg]
    embedder = Embedder(settings)
    own = eval_index_settings(settings, DEFAULT_CORPUS, model_id=embedder.model_id)
    store = build_eval_index(DEFAULT_CORPUS, settings=own, embedder=embedder)
    queries = load_questions(DEFAULT_QUERIES).questions[: args.limit]
    cached: Any = CachedEmbedder(embedder)

    rows = []
    print(f"{'variant':<52}" + "".join(f"{c:>12}" for c in COLUMNS))
    for name, options in VARIANTS:
        retriever = Retriever(own, store=store, embedder=cached, options=options)
        results = retrieve_all(queries, lambda q, r=retriever: r.search(q, k=10), progress=False)
        summary = summarise_retrieval(results)
        overall = summary["overall"]
        print(f"{name:<52}" + "".join(f"{overall[c]:>12.4f}" for c in COLUMNS), flush=True)
        rows.append({"variant": name, "options": options.describe(), **summary})
    retriever = Retriever(own, store=store, embedder=cached, options=FULL)
    for name, excerpts in (
        ("oracle articles, whole chunks", False),
        ("oracle articles, excerpts", True),
    ):
        oracle = Oracle(retriever, queries, excerpts=excerpts)
        summary = summarise_retrieval(retrieve_all(queries, oracle.search, progress=False))
        overall = summary["overall"]
        print(f"{name:<52}" + "".join(f"{overall[c]:>12.4f}" for c in COLUMNS), flush=True)
        rows.append({"variant": name, "options": {"oracle": True, "excerpts": excerpts}, **summary})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"queries": str(DEFAULT_QUERIES), "variants": rows}, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
