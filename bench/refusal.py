"""Refusal calibration on MultiHop-RAG dev queries: refuse the null queries, answer the rest.

    python bench/refusal.py [--storage runs/bench-multihop] [--limit N] [--out FILE]

Indexes data/multihop-rag/corpus.json into its own storage (first run only; the shipped
vectors-*.npz skips the embedding when present), answers every dev query extractively, and
prints refusal precision and recall of the evidence score over thresholds. A query is refused
when its evidence score is below the threshold; "refusal" is the positive class, so precision
is the share of refusals that were null queries and recall the share of null queries refused.
Then the same for the engine's own refusals, every reason together (dates outside the archive,
an outlet it does not hold, a name it never mentions, the evidence score), and for the archive's
silence alone (assistant/silence.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from news_assistant_data import MULTIHOP_DIR

from assistant.config import Settings
from assistant.engine import Engine
from evaluation.questions import NULL_TYPE, Question, load_questions
from index.config import quiet_offline_environment
from index.embedding import VectorCache

REPO = Path(__file__).resolve().parent.parent


def scores_at(threshold: float, rows: list[dict[str, Any]]) -> dict[str, float]:
    refused = [r for r in rows if r["evidence_score"] < threshold]
    null = [r for r in rows if r["null"]]
    answerable = len(rows) - len(null)
    hits = sum(r["null"] for r in refused)
    precision = hits / len(refused) if refused else 1.0
    recall = hits / len(null) if null else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    wrongly = len(refused) - hits
    return {
        "threshold": round(threshold, 3),
        "refused": len(refused),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "answerable_refused": round(wrongly / answerable, 4) if answerable else 0.0,
    }


def flagged(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Precision and recall of the rows marked `key` ("refused", "silent") as refusals."""
    marked = [r for r in rows if r.get(key)]
    hits = sum(r["null"] for r in marked)
    nulls = sum(r["null"] for r in rows)
    return {
        "refused": len(marked),
        "precision": round(hits / len(marked), 4) if marked else 1.0,
        "recall": round(hits / nulls, 4) if nulls else 0.0,
    }


def auc(rows: list[dict[str, Any]]) -> float:
    """Chance that a null query scores below an answerable one (0.5: no separation)."""
    null = [r["evidence_score"] for r in rows if r["null"]]
    other = [r["evidence_score"] for r in rows if not r["null"]]
    pairs = sum((n < o) + 0.5 * (n == o) for n in null for o in other)
    return pairs / (len(null) * len(other)) if null and other else 0.5


def ensure_index(engine: Engine) -> None:
    """Index the MultiHop-RAG corpus if the store is empty, from the shipped vectors if any."""
    if not engine.index.is_empty():
        return
    cache_path = MULTIHOP_DIR / f"vectors-{engine.embedder.model_id}.npz"
    cache = VectorCache.load(cache_path) if cache_path.exists() else None
    print(f"indexing the corpus ({'shipped vectors' if cache else 'embedding every chunk'})")
    report = engine.index.ingest([MULTIHOP_DIR / "corpus.json"], vector_cache=cache, progress=True)
    print(report.summary())


def evidence_scores(engine: Engine, questions: list[Question]) -> list[dict[str, Any]]:
    """Each question's evidence score from an extractive answer, with its type."""
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for i, question in enumerate(questions, start=1):
        answer = engine.ask(question.question, use_llm=False)
        rows.append(
            {
                "id": question.id,
                "type": question.question_type,
                "null": question.question_type == NULL_TYPE,
                "evidence_score": round(answer.evidence_score, 4),
                "refused": answer.refused,
                "silent": "the archive is silent on part of the question" in answer.notes,
            }
        )
        if i % 50 == 0:
            print(f"  {i}/{len(questions)} queries, {time.perf_counter() - started:.0f}s")
    return rows


def print_report(rows: list[dict[str, Any]], current: float) -> list[dict[str, float]]:
    """Scores per question type, then precision and recall over thresholds (returned)."""
    nulls = sum(r["null"] for r in rows)
    print(f"\n{len(rows)} queries, {nulls} null; AUC of the evidence score {auc(rows):.3f}")
    for kind in sorted({r["type"] for r in rows}):
        values = sorted(r["evidence_score"] for r in rows if r["type"] == kind)
        print(
            f"  {kind:18s} n={len(values):3d}  score p10 {values[len(values) // 10]:.3f}  "
            f"p50 {values[len(values) // 2]:.3f}  p90 {values[9 * len(values) // 10]:.3f}"
        )
    table = [scores_at(t / 100, rows) for t in range(20, 61)]
    print(
        f"\n{'threshold':>9s} {'refused':>7s} {'precision':>9s} {'recall':>7s} {'F1':>6s} "
        f"{'answerable refused':>18s}"
    )
    for line in table:
        mark = "  <- settings.refusal_threshold" if abs(line["threshold"] - current) < 1e-9 else ""
        print(
            f"{line['threshold']:9.2f} {line['refused']:7d} {line['precision']:9.3f} "
            f"{line['recall']:7.3f} {line['f1']:6.3f} {line['answerable_refused']:18.3f}{mark}"
        )
    return table


def main() -> None:
    quiet_offline_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", type=Path, default=REPO / "runs" / "bench-multihop")
    parser.add_argument("--limit", type=int, help="Only the first N queries.")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "refusal.json")
    args = parser.parse_args()

    settings = Settings(  # type: ignore[call-arg]
        storage_dir=args.storage, torch_threads=args.torch_threads, llm_url=None
    )
    engine = Engine(settings)
    ensure_index(engine)
    questions = load_questions(MULTIHOP_DIR / "queries-dev.json").questions
    questions = questions[: args.limit] if args.limit else questions
    rows = evidence_scores(engine, questions)

    current = settings.refusal_threshold
    table = print_report(rows, current)
    best = max(table, key=lambda line: line["f1"])
    print(f"\nbest F1 at threshold {best['threshold']:.2f}: {best}")
    print(f"at the configured threshold {current}: {scores_at(current, rows)}")
    print(f"the engine's refusals, every reason: {flagged(rows, 'refused')}")
    print(f"the archive's silence alone: {flagged(rows, 'silent')}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "queries": len(rows),
                "null_queries": sum(r["null"] for r in rows),
                "auc": round(auc(rows), 4),
                "configured_threshold": current,
                "at_configured": scores_at(current, rows),
                "engine_refusals": flagged(rows, "refused"),
                "silence": flagged(rows, "silent"),
                "best_f1": best,
                "table": table,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
