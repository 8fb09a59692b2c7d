"""Extractive answer latency on the demo corpus, beside retrieval alone on the same questions.

    python bench/answer.py [--storage runs/bench-demo] [--torch-threads N] [--out FILE]

Builds the demo index from the shipped vectors (first run only), then asks each question:
first "cold" (the sentence-vector cache emptied before each question, as for a new process),
then "warm" (the same question again with the cache kept: the floor a long-running app reaches
where passages recur). Retrieval alone (`Engine.search`) runs on the same questions, in the same
run, as the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from statistics import median
from typing import Any

from assistant.config import Settings
from assistant.engine import Engine
from index.config import quiet_offline_environment

REPO = Path(__file__).resolve().parent.parent

QUESTIONS = [
    "What did Lavrov say about NATO expansion?",
    "What did Psaki say about inflation?",
    "What did Biden say about sanctions on Russia?",
    "What did Blinken say after meeting Lavrov in Geneva?",
    "When did Russia invade Ukraine?",
    "How many troops did Russia mass on Ukraine's border?",
    "What did the United States reply to Russia's security proposals?",
    "What did Jake Sullivan say about a possible invasion?",
    "What sanctions did the US impose on Nord Stream 2?",
    "Who did Biden nominate to the Supreme Court?",
    "What did the White House say about at-home COVID tests?",
    "What did Biden say about Ketanji Brown Jackson?",
    "What did Psaki say about the Build Back Better agenda?",
    "What did the President say about gas prices?",
    "What did the White House announce about Afghanistan?",
    "What did Biden say at the memorial for Harry Reid?",
    "What did Chancellor Scholz say about Nord Stream?",
    "What is the OSCE commitment that Lavrov cited?",
    "Who won the 2018 World Cup?",
    "What is the recipe for a good carbonara?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(median(values), 4),
        "p95": round(percentile(values, 95), 4),
        "mean": round(sum(values) / len(values), 4),
    }


def time_questions(
    engine: Engine,
) -> tuple[dict[str, dict[str, list[float]]], list[dict[str, Any]]]:
    """Seconds per question for retrieval alone, then each answer cold and warm; the cold
    answers."""
    rows: dict[str, dict[str, list[float]]] = {
        "retrieval alone": {"total": []},
        "answer, cold": {"retrieve": [], "compose": [], "total": []},
        "answer, warm": {"retrieve": [], "compose": [], "total": []},
    }
    answers: list[dict[str, Any]] = []
    for question in QUESTIONS:
        t0 = time.perf_counter()
        engine.search(question)
        rows["retrieval alone"]["total"].append(time.perf_counter() - t0)
        engine.__dict__.pop("sentence_vectors", None)
        for run in ("answer, cold", "answer, warm"):  # warm: the same question again
            t0 = time.perf_counter()
            answer = engine.ask(question, use_llm=False)
            wall = time.perf_counter() - t0
            rows[run]["retrieve"].append(answer.timings["retrieve"])
            rows[run]["compose"].append(answer.timings["compose"])
            rows[run]["total"].append(wall)
            if run == "answer, cold":
                answers.append(
                    {
                        "question": question,
                        "refused": answer.refused,
                        "evidence_score": round(answer.evidence_score, 4),
                        "answer": answer.text,
                        "seconds": round(wall, 4),
                    }
                )
    return rows, answers


def print_table(rows: dict[str, dict[str, list[float]]], torch_threads: int) -> dict[str, Any]:
    """The p50 / p95 table, printed; the same figures (and the mean) returned."""
    print(f"\n{len(QUESTIONS)} questions, seconds (torch threads: {torch_threads or 'default'})")
    print(f"{'':18s} {'retrieve p50/p95':>18s} {'compose p50/p95':>18s} {'total p50/p95':>18s}")
    results: dict[str, Any] = {}
    for name, columns in rows.items():
        stats = {column: summary(values) for column, values in columns.items()}
        results[name] = stats

        def cell(column: str, stats: dict[str, dict[str, float]] = stats) -> str:
            if column not in stats:
                return f"{'-':>18s}"
            return f"{stats[column]['p50']:>8.3f} / {stats[column]['p95']:<7.3f}"

        print(f"{name:18s} {cell('retrieve')} {cell('compose')} {cell('total')}")
    return results


def main() -> None:
    quiet_offline_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", type=Path, default=REPO / "runs" / "bench-demo")
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "answer.json")
    args = parser.parse_args()

    settings = Settings(  # type: ignore[call-arg]
        storage_dir=args.storage, torch_threads=args.torch_threads, llm_url=None
    )
    engine = Engine(settings)
    started = time.perf_counter()
    report = engine.index.ensure_demo(progress=False)
    build = time.perf_counter() - started
    print(report.summary() if report else f"index: {engine.index.count()} chunks ({build:.1f}s)")
    engine.ask("What did Lavrov say?")  # loads the model and the keyword index

    rows, answers = time_questions(engine)
    results = print_table(rows, args.torch_threads)
    refused = sum(a["refused"] for a in answers)
    print(f"\nrefused {refused} of {len(answers)}; load average {os.getloadavg()[0]:.2f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "questions": len(QUESTIONS),
                "torch_threads": args.torch_threads,
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(),
                },
                "seconds": results,
                "answers": answers,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
