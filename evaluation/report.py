"""The evaluation report: a Markdown page with the published baselines beside our figures, and
PNG charts (scores per question type, latency), from a run's summary and answers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.runs import BenchmarkRun

PAPER = "Tang & Yang, MultiHop-RAG (COLM 2024), arXiv 2401.15391"
# Table 5: retrieval on the full 2,556-query set, 256-token chunks. MAP@10 of the reranked run
# is given as about 0.48.
PUBLISHED_RETRIEVAL: tuple[tuple[str, dict[str, float]], ...] = (
    (
        "bge-large-en-v1.5",
        {"MRR@10": 0.4298, "MAP@10": 0.3423, "Hits@10": 0.6718, "Hits@4": 0.5221},
    ),
    ("voyage-02", {"MRR@10": 0.3934, "MAP@10": 0.3143, "Hits@10": 0.6506, "Hits@4": 0.4619}),
    (
        "voyage-02 + bge-reranker-large (best published)",
        {"MRR@10": 0.5860, "MAP@10": 0.48, "Hits@10": 0.7467, "Hits@4": 0.6625},
    ),
)
APPROXIMATE = {("voyage-02 + bge-reranker-large (best published)", "MAP@10")}
# Table 6: answer accuracy of LLMs given the retrieved chunks (the benchmark's lenient rule).
PUBLISHED_ACCURACY: tuple[tuple[str, float], ...] = (
    ("GPT-4", 0.56),
    ("Mixtral-8x7B", 0.32),
    ("Llama-2-70B", 0.28),
)
RETRIEVAL_COLUMNS = ("MRR@10", "MAP@10", "Hits@10", "Hits@4")
TYPE_COLUMNS = (
    ("right", "right"),
    ("lenient", "lenient acc"),
    ("exact_match", "EM"),
    ("token_f1", "F1"),
    ("short_f1", "short F1"),
    ("Hits@4", "Hits@4"),
    ("Hits@10", "Hits@10"),
    ("MRR@10", "MRR@10"),
    ("MAP@10", "MAP@10"),
    ("citation_precision", "cite P"),
    ("citation_recall", "cite R"),
    ("refused", "refused"),
)
CHART_METRICS = (
    ("lenient", "lenient accuracy"),
    ("token_f1", "token F1"),
    ("Hits@10", "Hits@10"),
    ("MRR@10", "MRR@10"),
    ("citation_precision", "citation precision"),
    ("citation_recall", "citation recall"),
)
SCORES_CHART = "scores-by-type.png"
LATENCY_CHART = "latency.png"
REPORT_FILE = "report.md"


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _groups(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("overall", summary["overall"]), *summary["by_type"].items()]


def format_summary(summary: dict[str, Any]) -> str:
    """The console table: each score overall and per question type, then refusals, latency."""
    names = [label for _, label in TYPE_COLUMNS]
    width = max(len(name) for name, _ in _groups(summary))
    lines = [f"{'':<{width}} {'n':>4} " + " ".join(f"{n:>11}" for n in names)]
    for name, block in _groups(summary):
        cells = " ".join(f"{_num(block['scores'][key]):>11}" for key, _ in TYPE_COLUMNS)
        lines.append(f"{name:<{width}} {block['questions']:>4} {cells}")
    overall = summary["overall"]
    r = overall["refusals"]
    lines.append(
        f"refusals: {r['refused']} of {overall['questions']} answers; on the "
        f"{r['unanswerable']} unanswerable questions precision {_num(r['precision'])}, "
        f"recall {_num(r['recall'])}"
    )
    lat, first = overall["latency_s"], overall["first_token_s"]
    lines.append(
        f"latency p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s; "
        f"first token p50 {first['p50']:.2f} s, p95 {first['p95']:.2f} s"
    )
    if summary.get("failed"):
        lines.append(f"{summary['failed']} question(s) failed; run again with the same --out")
    return "\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _baselines(summary: dict[str, Any]) -> list[str]:
    ours = summary["overall"]["scores"]
    counted = summary["overall"]["counts"]["Hits@10"]
    lines = [
        "## Compared with the published baselines",
        "",
        f"Source: {PAPER}. Their figures are over the full 2,556-query set with 256-token "
        f"chunks; ours are over the {counted} questions with evidence in this run (null "
        "queries skipped, as upstream), with our own chunking; a guide, not a like-for-like "
        "comparison.",
        "",
        "Retrieval (Table 5), top 10 passages of each answer:",
        "",
    ]
    rows = [["**news-assistant (this run)**", *(_num(ours[m]) for m in RETRIEVAL_COLUMNS)]]
    for name, values in PUBLISHED_RETRIEVAL:
        rows.append(
            [
                name,
                *(
                    f"~{values[m]:.2f}" if (name, m) in APPROXIMATE else f"{values[m]:.4f}"
                    for m in RETRIEVAL_COLUMNS
                ),
            ]
        )
    lines += _table(["retriever", *RETRIEVAL_COLUMNS], rows)
    lines += [
        "",
        "Answer accuracy (Table 6, the benchmark's lenient word-overlap rule, LLMs given the "
        "retrieved chunks):",
        "",
    ]
    modes = ", ".join(summary.get("modes", {})) or "?"
    rows = [[f"**news-assistant (this run, {modes})**", _num(ours["lenient"])]]
    rows += [[name, f"{value:.2f}"] for name, value in PUBLISHED_ACCURACY]
    lines += _table(["system", "accuracy"], rows)
    return lines


NOTES = """## How to read these numbers

- **lenient accuracy** is MultiHop-RAG's own rule (its `qa_evaluate.py`): an answer is right
  when its lower-cased, whitespace-split words share any word with the gold answer's
  (punctuation stays attached, so "yes." is not "yes"; a shared "the" is enough). Extractive
  answers are whole sentences, which share words with names and entities easily but seldom say
  "Yes" or "No": it is the figure comparable with the paper's, and it flatters sentences on
  entity questions while it under-counts yes/no questions.
- **EM** and **F1** are SQuAD's exact match and token F1 after its normalisation (lower case,
  no punctuation, no articles), the best over the gold answers. A sentence is never an exact
  match for a one-word answer; read them as a floor.
- A refusal counts as the answer "Insufficient information." and `[n]` citation markers are
  removed before any answer is scored.
- **short F1**: SQuAD token F1 of the short answer (or, where the answer gives none, of its
  first sentence) against the gold answers, over answerable questions whose gold answer is
  not yes or no.
- **right**: a question to refuse was refused; any other was answered, holds every
  `must_contain` phrase and no `must_not_contain` phrase, and, where gold answers are given,
  matches one by the lenient rule or by a short answer (or verdict) of token F1 >= 0.5.
- **Retrieval** scores (Hits@K, MRR@10, MAP@10, evidence recall/complete@10) are the
  benchmark's, over the ranked passages each answer was built from (`k` = 10), for questions
  with gold evidence facts; a passage holds a fact when the fact, with spaces and newlines
  removed, is a substring of it.
- **Citation precision**: share of an answer's citations whose passage holds a gold fact (same
  test) or whose article is a gold evidence article (by URL, title or id); averaged over
  answers with citations to questions with evidence. **Citation recall**: share of the gold
  evidence articles that some citation points to; averaged over questions with evidence.
- **Refusals**: precision and recall of refusing, taking the questions whose gold answer is
  "Insufficient information" as the ones to refuse.
- **Latency** is the time to the whole answer; **first token** the time to the first streamed
  piece of it (in-process: the first "delta" of `Engine.ask_stream`; over HTTP `/api/ask` is
  not streamed, so it equals the latency). Extractive answers are composed before the first
  sentence is sent, so there too the two are close."""


def _overview(run: BenchmarkRun) -> list[str]:
    m, overall = run.manifest, run.summary["overall"]
    r = overall["refusals"]
    lat, first = overall["latency_s"], overall["first_token_s"]
    scores = overall["scores"]
    counts = overall["counts"]
    rows = [
        ["right", _num(scores["right"]), str(counts["right"])],
        ["short-answer token F1", _num(scores["short_f1"]), str(counts["short_f1"])],
        ["lenient accuracy (benchmark rule)", _num(scores["lenient"]), str(counts["lenient"])],
        ["exact match", _num(scores["exact_match"]), str(counts["exact_match"])],
        ["token F1", _num(scores["token_f1"]), str(counts["token_f1"])],
        *(
            [name, _num(scores[name]), str(counts[name])]
            for name in ("Hits@4", "Hits@10", "MRR@10", "MAP@10", "recall@10", "complete@10")
        ),
        [
            "citation precision",
            _num(scores["citation_precision"]),
            str(counts["citation_precision"]),
        ],
        ["citation recall", _num(scores["citation_recall"]), str(counts["citation_recall"])],
        ["refusal precision", _num(r["precision"]), str(r["refused"])],
        ["refusal recall", _num(r["recall"]), str(r["unanswerable"])],
        [
            "latency p50 / p95 (s)",
            f"{lat['p50']:.2f} / {lat['p95']:.2f}",
            str(overall["questions"]),
        ],
        [
            "first token p50 / p95 (s)",
            f"{first['p50']:.2f} / {first['p95']:.2f}",
            str(overall["questions"]),
        ],
    ]
    lines = [
        f"# Answer evaluation: {Path(str(m.get('questions_file', ''))).name}",
        "",
        f"- questions: {overall['questions']} answered"
        + (
            f", {run.summary['failed']} failed (rerun with the same --out)"
            if run.summary["failed"]
            else ""
        )
        + f" ({m.get('format', '?')} file `{m.get('questions_file', '')}`"
        + (f", --limit {m['limit']}" if m.get("limit") else "")
        + (f", --sample {m['sample']} --seed {m['seed']}" if m.get("sample") else "")
        + ")",
        f"- target: {m.get('target', '?')}; answer mode: {m.get('answer_mode', '?')}"
        + f" (seen: {', '.join(f'{k} x{v}' for k, v in run.summary.get('modes', {}).items())})",
        f"- passages per answer (k): {m.get('k', '?')}"
        + (f"; corpus `{m['corpus']}`, index `{m['index']}`" if m.get("index") else ""),
        "- answered: "
        + (
            "; ".join(
                f"{s['answered']} by code {s.get('version', '?')} from {s.get('started', '?')}"
                for s in m.get("sessions", [])
                if s.get("answered")
            )
            or "none"
        )
        + f"; scored by code {m.get('version', '?')}",
        "",
        "## Headline",
        "",
        *_table(["metric", "score", "over"], rows),
        "",
        '"over": the questions (or answers) the figure is averaged over.',
    ]
    return lines


def _by_type(summary: dict[str, Any]) -> list[str]:
    rows = [
        [name, str(block["questions"]), *(_num(block["scores"][key]) for key, _ in TYPE_COLUMNS)]
        for name, block in _groups(summary)
    ]
    refusal_rows = [
        [
            name,
            str(block["questions"]),
            str(block["refusals"]["unanswerable"]),
            str(block["refusals"]["refused"]),
            str(block["refusals"]["refused_unanswerable"]),
            _num(block["refusals"]["precision"]),
            _num(block["refusals"]["recall"]),
        ]
        for name, block in _groups(summary)
    ]
    latency_rows = [
        [
            name,
            f"{block['latency_s']['p50']:.2f}",
            f"{block['latency_s']['p95']:.2f}",
            f"{block['first_token_s']['p50']:.2f}",
            f"{block['first_token_s']['p95']:.2f}",
        ]
        for name, block in _groups(summary)
    ]
    return [
        "## By question type",
        "",
        *_table(["type", "n", *(label for _, label in TYPE_COLUMNS)], rows),
        "",
        "## Refusals",
        "",
        *_table(
            [
                "type",
                "n",
                "unanswerable",
                "refused",
                "refused & unanswerable",
                "precision",
                "recall",
            ],
            refusal_rows,
        ),
        "",
        "## Latency (seconds)",
        "",
        *_table(["type", "p50", "p95", "first token p50", "first token p95"], latency_rows),
    ]


def _verdicts(summary: dict[str, Any]) -> list[str]:
    """Yes/no verdicts beside always answering "yes", per question type with yes/no questions."""
    rows = []
    for name, block in _groups(summary):
        scores, counts = block["scores"], block["counts"]
        if not counts.get("yes_baseline"):
            continue
        rows.append(
            [
                name,
                str(counts["yes_baseline"]),
                f"{_num(scores['verdict_coverage'])} ({counts['verdict_accuracy']})",
                _num(scores["verdict_accuracy"]),
                _num(scores["yes_on_verdicts"]),
                _num(scores["yes_baseline"]),
            ]
        )
    if not rows:
        return []
    header = [
        "type",
        "yes/no questions",
        "verdict given (n)",
        "verdict accuracy",
        '"yes" on those',
        '"yes" on all',
    ]
    return [
        "## Yes/no verdicts",
        "",
        "Over the questions whose gold answer is yes or no: how often the answer states a verdict, "
        'how often that verdict is right, and beside it the accuracy of always answering "yes" '
        "on the same questions and on all the yes/no questions.",
        "",
        *_table(header, rows),
        "",
    ]


def _wrong(records: Sequence[dict[str, Any]]) -> list[str]:
    """The questions not answered right, with why and the start of the answer."""
    wrong = [r for r in records if r.get("wrong_because")]
    lines = [f"## Not right ({len(wrong)} of {len(records)})", ""]
    for r in wrong:
        said = " ".join(str(r["answer"]).split())
        said = said if len(said) <= 200 else said[:200] + " ..."
        lines.append(
            f"- `{r['id']}` ({r['question_type']}) {r['question']} -- {r['wrong_because']}. "
            f"Answer: {said}"
        )
    return [*lines, ""]


def plot_scores_by_type(summary: dict[str, Any], path: Path) -> Path:
    """Grouped bars: each chart metric for every question type and overall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _groups(summary)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * len(groups)), 4.2), dpi=120)
    width = 0.8 / len(CHART_METRICS)
    for j, (key, label) in enumerate(CHART_METRICS):
        values = [block["scores"][key] for _, block in groups]
        xs = [i + (j - (len(CHART_METRICS) - 1) / 2) * width for i in range(len(groups))]
        heights = [math.nan if v is None else v for v in values]
        ax.bar(xs, heights, width, label=label)
        for x, value in zip(xs, values, strict=True):
            text = "n/a" if value is None else f"{value:.2f}"
            y = 0.01 if value is None else value + 0.01
            ax.text(x, y, text, ha="center", va="bottom", rotation=90, fontsize=6)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{name}\n(n={block['questions']})" for name, block in groups])
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("score")
    ax.set_title("Scores per question type (n/a: the metric does not apply)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_latency(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Histogram of answer latency and time to first token, with the medians and p95s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from evaluation.metrics import percentile

    latency = [float(r["latency_s"]) for r in records]
    first = [float(r["first_token_s"]) for r in records]
    fig, ax = plt.subplots(figsize=(7.0, 3.8), dpi=120)
    top = max([*latency, 0.001])
    bins = [top * i / 40 for i in range(41)]
    # Within a bin of each other: one curve, said to be both (extractive answers in-process,
    # and every answer over HTTP).
    same = all(abs(a - b) < top / 80 for a, b in zip(latency, first, strict=True))
    series = [(latency, "-", "whole answer" + (" = first token" if same else ""))]
    if not same:
        series.append((first, "--", "first token"))
    for values, style, label in series:
        ax.hist(values, bins=bins, histtype="step", linewidth=1.5, linestyle=style, label=label)
        for q in (50, 95):
            ax.axvline(percentile(values, q), color="black", linestyle=style, linewidth=0.8)
    ax.set_xlabel("seconds (black lines: p50 and p95)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("questions")
    ax.set_title(f"Latency over {len(records)} questions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(run: BenchmarkRun) -> list[Path]:
    """report.md and its two charts in the run's folder; returns the paths written."""
    charts = [
        plot_scores_by_type(run.summary, run.out / SCORES_CHART),
        plot_latency(run.records, run.out / LATENCY_CHART),
    ]
    lines = [*_overview(run), "", *_by_type(run.summary), "", *_verdicts(run.summary)]
    lines += _wrong(run.records)
    if run.manifest.get("format") == "multihop-rag":
        lines += [*_baselines(run.summary), ""]
    lines += [
        "## Charts",
        "",
        f"![Scores per question type]({SCORES_CHART})",
        "",
        f"![Latency]({LATENCY_CHART})",
        "",
        NOTES,
        "",
        "## Files",
        "",
        "- `answers.jsonl`: one line a question: the answer, refusal, mode, citations (with "
        "their passages), the ranked passages, where each gold fact was found, every score and "
        "the timings",
        "- `summary.json`: the run's settings and every figure above",
        "- `run.json`: what was asked (reruns with the same --out add only what is missing)",
        "",
    ]
    report = run.out / REPORT_FILE
    report.write_text("\n".join(lines), encoding="utf-8")
    return [report, *charts]
