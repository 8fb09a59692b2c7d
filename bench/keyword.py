"""The keyword index at archive scale: the old full rebuild beside the new delta segments.

A synthetic archive: the MultiHop-RAG articles cut into ~1,000-character chunks and repeated
under new ids up to `--chunks`. Measured in one process, old and new side by side:

- add one article: old, what each write did (tokenise every chunk, bm25s index, rewrite the
  folder); new, a delta segment of the article's chunks saved beside the main one;
- a reader sees the change: old, the reader loaded the rewritten folder whole (records, BM25
  model, fingerprint check; the full read of Chroma's metadata before it is not counted here);
  new, the reader reads the manifest and the new delta alone;
- search: BM25 candidates (top 200) for the MultiHop-RAG dev questions: old, a dense score for
  every chunk then a partition; new, the postings of the question's terms alone.

    python bench/keyword.py --chunks 50000
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.keyword import ChunkRecord, KeywordIndex, fingerprint, keyword_text, keyword_tokens

DATA = Path(__file__).resolve().parents[1] / "data" / "multihop-rag"
RESULTS = Path(__file__).resolve().parent / "results" / "keyword.json"
POOL = 200


def synthetic_archive(chunks: int) -> list[ChunkRecord]:
    articles = json.loads((DATA / "corpus.json").read_text())
    records: list[ChunkRecord] = []
    copy = 0
    while len(records) < chunks:
        for n, article in enumerate(articles):
            body = article["body"]
            pieces = [body[i : i + 1000] for i in range(0, len(body), 900)] or [""]
            aid = f"a{copy}-{n}"
            for c, text in enumerate(pieces):
                meta = {
                    "article_id": aid,
                    "article_hash": f"h{copy}",
                    "title": article["title"],
                    "source": article["source"],
                    "chunk": c,
                }
                records.append(ChunkRecord(f"{aid}-{c:04d}", text, meta))
        copy += 1
    return records[:chunks]


def new_article(records: list[ChunkRecord]) -> list[ChunkRecord]:
    """One more article: the first one's chunks under a new id."""
    first = [r for r in records if r.metadata["article_id"] == records[0].metadata["article_id"]]
    meta = {"article_id": "new", "article_hash": "new"}
    return [
        ChunkRecord(f"new-{i:04d}", r.text, {**r.metadata, **meta}) for i, r in enumerate(first)
    ]


class OldIndex:
    """The index before: one bm25s model of every chunk, rebuilt and rewritten on each write."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bm25: Any = None
        self.records: list[ChunkRecord] = []

    def rebuild(self, records: list[ChunkRecord]) -> None:
        bm25 = bm25s.BM25()
        bm25.index([keyword_tokens(keyword_text(r)) for r in records], show_progress=False)
        self.bm25, self.records = bm25, records
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        bm25.save(str(self.folder / "bm25"), show_progress=False)
        with (self.folder / "records.jsonl").open("w", encoding="utf-8") as out:
            for r in records:
                out.write(json.dumps([r.id, r.text, r.metadata], ensure_ascii=False) + "\n")
        state = fingerprint([r.id for r in records], [r.metadata for r in records])
        (self.folder / "state.json").write_text(json.dumps({"fingerprint": state}))

    def load(self) -> None:
        with (self.folder / "records.jsonl").open(encoding="utf-8") as lines:
            records = [ChunkRecord(*json.loads(line)) for line in lines]
        fingerprint([r.id for r in records], [r.metadata for r in records])
        self.bm25 = bm25s.BM25.load(str(self.folder / "bm25"), show_progress=False)
        self.records = records

    def top(self, query: str) -> np.ndarray:
        tokens = [t for t in keyword_tokens(query) if t in self.bm25.vocab_dict]
        if not tokens:
            return np.zeros(0, dtype=np.int64)
        scores = np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)
        candidates = np.flatnonzero(scores > 0)
        k = min(POOL, candidates.size)
        if not k:
            return candidates
        part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        return part[np.argsort(-scores[part], kind="stable")]


def new_top(index: KeywordIndex, query: str) -> np.ndarray:
    rows, scores = index.top_scores(query)
    k = min(POOL, rows.size)
    if not k:
        return rows
    part = np.argpartition(-scores, k - 1)[:k]
    return rows[part[np.argsort(-scores[part], kind="stable")]]


def _ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def _timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(chunks: int, queries: int, folder: Path) -> dict[str, Any]:
    records = synthetic_archive(chunks)
    added = new_article(records)
    questions = [q["query"] for q in json.loads((DATA / "queries-dev.json").read_text())]
    questions = questions[:queries]
    out: dict[str, Any] = {"chunks": len(records), "article_chunks": len(added)}

    old_writer, old_reader = OldIndex(folder / "old"), OldIndex(folder / "old")
    out["old_build_s"] = round(_timed(lambda: old_writer.rebuild(records)), 2)
    old_reader.load()
    out["old_add_s"] = round(_timed(lambda: old_writer.rebuild(records + added)), 3)
    out["old_reader_s"] = round(_timed(old_reader.load), 3)

    writer, reader = KeywordIndex(folder / "new" / "kw"), KeywordIndex(folder / "new" / "kw")
    out["new_build_s"] = round(_timed(lambda: writer.rebuild(records, generation="g0")), 2)
    reader.follow(reader.read_manifest() or {})
    out["new_add_s"] = round(_timed(lambda: writer.apply(added, [], "g1")), 3)

    def follow() -> None:
        manifest = reader.read_manifest()
        assert manifest is not None and reader.follow(manifest)

    out["new_reader_s"] = round(_timed(follow), 3)
    assert len(reader) == len(writer) == len(records) + len(added)
    out["new_reader_segments"] = reader.segment_count

    old_times, new_times, overlap = [], [], []
    for question in questions:
        old_times.append(_timed(lambda q=question: old_reader.top(q)))
        new_times.append(_timed(lambda q=question: new_top(reader, q)))
        a, b = set(old_reader.top(question).tolist()), set(new_top(reader, question).tolist())
        overlap.append(len(a & b) / max(len(a), 1))
    out["old_search"], out["new_search"] = _ms(old_times), _ms(new_times)
    out["top200_overlap"] = round(statistics.mean(overlap), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[50000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rows = []
    for chunks in args.chunks:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(measure(chunks, args.queries, Path(tmp)))
    print(
        "| chunks | add one article: old / new (s) | reader sees it: old / new (s) "
        "| BM25 top-200 p50: old / new (ms) | p95: old / new (ms) | same top 200 |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['chunks']:,} | {r['old_add_s']} / {r['new_add_s']} "
            f"| {r['old_reader_s']} / {r['new_reader_s']} "
            f"| {r['old_search']['p50_ms']} / {r['new_search']['p50_ms']} "
            f"| {r['old_search']['p95_ms']} / {r['new_search']['p95_ms']} "
            f"| {r['top200_overlap']:.1%} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
