"""Embedding backends side by side: torch, onnx (fp32) and onnx-int8 on the same chunks.

    python bench/embedding.py [--chunks N] [--threads T] [--out bench/results/embedding.json]

The chunks are MultiHop-RAG articles (data/multihop-rag/corpus.json) chunked as the index does.
Each backend embeds them in a fresh subprocess (so its peak memory is its own) with T threads,
after a warm-up batch (the ONNX files are exported beforehand, once, into the user cache);
then its vectors are compared with torch's: the cosine distance per chunk, mean and max.
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
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "data" / "multihop-rag" / "corpus.json"
BACKENDS = ("torch", "onnx", "onnx-int8")


def _chunk_texts(limit: int) -> list[str]:
    from index.config import IndexSettings
    from index.embedding import Embedder
    from index.loaders import load_paths
    from index.pipeline import IngestReport, chunk_article, dedupe, embedding_text

    settings = IndexSettings(embedding_backend="torch", embedding_device="cpu")
    embedder = Embedder(settings)
    texts: list[str] = []
    for article in dedupe(load_paths([CORPUS]), IngestReport()):
        chunks = chunk_article(article, embedder=embedder, settings=settings)
        texts += [embedding_text(article, chunk) for chunk in chunks]
        if len(texts) >= limit:
            break
    return texts[:limit]


def _worker(backend: str, texts_file: Path, vectors_file: Path, threads: int) -> dict[str, Any]:
    """Runs in the subprocess: embeds the texts with one backend on the CPU."""
    from index.config import IndexSettings
    from index.embedding import Embedder

    texts = json.loads(texts_file.read_text())
    settings = IndexSettings(
        embedding_backend=backend, embedding_device="cpu", ingest_threads=threads
    )
    embedder = Embedder(settings)
    with embedder.bulk_threads():
        embedder.embed(texts[:32])  # loads the model (and the session)
        started = time.perf_counter()
        vectors = embedder.embed(texts)
        seconds = time.perf_counter() - started
    np.save(vectors_file, vectors)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak_kb / 1024)}


def _run(backend: str, texts_file: Path, folder: Path, threads: int) -> tuple[dict, np.ndarray]:
    vectors_file = folder / f"{backend}.npy"
    command = [sys.executable, __file__, "--worker", backend, "--texts", str(texts_file)]
    command += ["--vectors", str(vectors_file), "--threads", str(threads)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1]), np.load(vectors_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/embedding.json")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--vectors", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.worker:
        print(json.dumps(_worker(args.worker, args.texts, args.vectors, args.threads)))
        return

    from index.embedding import bundled_model_path, model_weights_id, onnx_model_file

    path = bundled_model_path()
    for precision in ("fp32", "int8"):  # exported once, outside the timed runs
        onnx_model_file(path, model_weights_id(path), precision)
    texts = _chunk_texts(args.chunks)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        reference: np.ndarray | None = None
        for backend in BACKENDS:
            measured, vectors = _run(backend, texts_file, Path(tmp), args.threads)
            reference = vectors if reference is None else reference
            distance = 1.0 - np.sum(vectors * reference, axis=1)
            rows.append(
                {
                    "backend": backend,
                    "chunks_per_s": round(len(texts) / measured["seconds"], 1),
                    **measured,
                    "cosine_distance_mean": float(f"{distance.mean():.2e}"),
                    "cosine_distance_max": float(f"{distance.max():.2e}"),
                }
            )
    base = rows[0]["chunks_per_s"]
    print(f"{len(texts)} MultiHop-RAG chunks, {args.threads} threads, CPU")
    print(f"{'backend':<10} {'chunks/s':>9} {'speed-up':>9} {'peak RSS':>9}  cos dist mean / max")
    for row in rows:
        print(
            f"{row['backend']:<10} {row['chunks_per_s']:>9} {row['chunks_per_s'] / base:>8.2f}x "
            f"{row['peak_rss_mb']:>6} MB {row['cosine_distance_mean']:>9.1e} / "
            f"{row['cosine_distance_max']:.1e}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"chunks": len(texts), "threads": args.threads, "device": "cpu", "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
