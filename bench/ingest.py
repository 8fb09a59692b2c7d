"""Ingest throughput: the whole pipeline beside bare SentenceTransformer.encode of the same chunks.

    python bench/ingest.py [--articles N] [--repeat R] [--out bench/results/ingest.json]

Each measurement runs in a fresh subprocess (so peak memory is its own), baseline and pipeline
alternating, on the demo corpus; the pipeline ingests into an empty temporary store with no
vector cache, so every chunk is embedded.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _subset(articles: int, folder: Path) -> list[Path]:
    from index.demo import DEMO_FILES

    whitehouse, tass = DEMO_FILES
    lines = whitehouse.read_text(encoding="utf-8").splitlines(keepends=True)[: articles - 1]
    subset = folder / "articles.jsonl"
    subset.write_text("".join(lines), encoding="utf-8")
    return [subset, tass]


def _chunk_texts(paths: list[Path]) -> list[str]:
    from index.config import IndexSettings
    from index.embedding import Embedder
    from index.loaders import load_paths
    from index.pipeline import IngestReport, chunk_article, dedupe, embedding_text

    settings = IndexSettings()
    embedder = Embedder(settings)
    articles = dedupe(load_paths(paths), IngestReport())
    return [
        embedding_text(a, c)
        for a in articles
        for c in chunk_article(a, embedder=embedder, settings=settings)
    ]


def _wordpieces(texts: list[str]) -> int:
    """What the model reads of these texts (truncated at its limit, special tokens included)."""
    from transformers import AutoTokenizer

    from index.embedding import bundled_model_path

    tokenizer = AutoTokenizer.from_pretrained(bundled_model_path(), local_files_only=True)
    ids = tokenizer(texts, truncation=True, max_length=256)["input_ids"]
    return sum(len(i) for i in ids)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_baseline(paths: list[Path]) -> dict[str, Any]:
    """Bare model: encode the chunk texts the pipeline would embed, nothing else."""
    from sentence_transformers import SentenceTransformer

    from index.embedding import bundled_model_path

    texts = _chunk_texts(paths)
    model = SentenceTransformer(bundled_model_path(), device="cpu", local_files_only=True)
    started = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    seconds = time.perf_counter() - started
    peak = _peak_mb()
    return {
        "chunks": len(texts),
        "wordpieces": _wordpieces(texts),
        "seconds": seconds,
        "peak_mb": peak,
    }


def run_pipeline(paths: list[Path]) -> dict[str, Any]:
    """The product: load, dedupe, chunk, embed, write to Chroma, build the keyword index."""
    from index.config import IndexSettings
    from index.embedding import Embedder
    from index.pipeline import ingest
    from index.store import ChunkStore

    with tempfile.TemporaryDirectory() as storage:
        settings = IndexSettings(storage_dir=Path(storage))
        embedder = Embedder(settings)
        # The models load before the clock starts, as the baseline's: the question model and
        # the one that embeds chunks (bf16 where native: 4 s, in the clock before December 3).
        assert embedder.dimensions > 0
        embedder.warm_bulk()
        store = ChunkStore(settings)
        started = time.perf_counter()
        report = ingest(paths, settings=settings, store=store, embedder=embedder, progress=False)
        seconds = time.perf_counter() - started
        peak = _peak_mb()
        # A keyword merge may still run on its thread, off the write path: let it end before
        # the folder goes (it failed the run, now and then, writing into a deleted folder).
        store.keyword.settle()
    return {
        "chunks": report.chunks_written,
        "wordpieces": _wordpieces(_chunk_texts(paths)),
        "seconds": seconds,
        "peak_mb": peak,
    }


def _measure(kind: str, articles: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--articles", str(articles)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    from index.config import quiet_offline_environment

    quiet_offline_environment()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=423, help="Demo articles to ingest.")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    parser.add_argument("--child", choices=["baseline", "pipeline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as folder:
            paths = _subset(args.articles, Path(folder))
            run = run_baseline if args.child == "baseline" else run_pipeline
            print(json.dumps(run(paths)))
        return

    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "pipeline": []}
    for i in range(args.repeat):
        order = ["baseline", "pipeline"] if i % 2 == 0 else ["pipeline", "baseline"]
        for kind in order:
            print(f"run {i + 1}/{args.repeat}: {kind} ...", file=sys.stderr, flush=True)
            runs[kind].append(_measure(kind, args.articles))

    rows = {}
    for kind, results in runs.items():
        seconds = median(r["seconds"] for r in results)
        rows[kind] = {
            "chunks": results[0]["chunks"],
            "wordpieces": results[0]["wordpieces"],
            "seconds": round(seconds, 2),
            "chunks_per_s": round(results[0]["chunks"] / seconds, 2),
            "wordpieces_per_s": round(results[0]["wordpieces"] / seconds, 1),
            "peak_mb": round(max(r["peak_mb"] for r in results), 1),
        }
    overhead = rows["pipeline"]["seconds"] / rows["baseline"]["seconds"] - 1
    print(f"\nIngest of {args.articles} demo articles, median of {args.repeat} run(s)\n")
    print(
        f"{'':10} {'chunks':>7} {'seconds':>8} {'chunks/s':>9} {'wordpieces/s':>13} {'peak MB':>8}"
    )
    for kind, row in rows.items():
        print(
            f"{kind:10} {row['chunks']:7d} {row['seconds']:8.2f} {row['chunks_per_s']:9.2f} "
            f"{row['wordpieces_per_s']:13.1f} {row['peak_mb']:8.1f}"
        )
    print(f"\npipeline overhead over the bare model: {overhead:+.1%} (target < +15%)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "articles": args.articles,
                "repeat": args.repeat,
                "runs": runs,
                "summary": rows,
                "overhead": round(overhead, 4),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
