"""`news-assistant eval`: the retrieval and answer benchmarks from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from assistant.engine import Engine
from serving.cli_options import errors_to_messages, llm_options, with_llm_settings


@click.group(name="eval")
def eval_group() -> None:
    """Measure the assistant on a benchmark (MultiHop-RAG is bundled)."""


@eval_group.command(name="retrieval")
@click.option(
    "--corpus",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Benchmark articles (default: the bundled MultiHop-RAG corpus).",
)
@click.option(
    "--queries",
    "queries_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Benchmark queries (default: the bundled MultiHop-RAG dev split).",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N queries of the file.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for summary.json and per-query JSONL (default: runs/retrieval-<time>).",
)
@click.option("--no-baseline", is_flag=True, help="Skip the plain llama-index baseline.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_obj
@errors_to_messages
def eval_retrieval(
    engine: Engine,
    corpus: Path | None,
    queries_path: Path | None,
    limit: int | None,
    out: Path | None,
    no_baseline: bool,
    quiet: bool,
) -> None:
    """Retrieval metrics on MultiHop-RAG, ours beside a plain llama-index pipeline.

    Indexes the corpus into its own store under the storage folder (reused on later runs),
    then reports Hits@4/10, MRR@10 and MAP@10 as the benchmark defines them, evidence
    recall@K and complete@K (K = 4, 6, 10), and latency, overall and per question type."""
    import time

    from evaluation.corpus import DEFAULT_CORPUS
    from evaluation.questions import DEFAULT_QUERIES
    from evaluation.retrieval import run_retrieval_eval

    run = run_retrieval_eval(
        corpus=corpus or DEFAULT_CORPUS,
        queries_path=queries_path or DEFAULT_QUERIES,
        settings=engine.settings,
        embedder=engine.embedder,
        limit=limit,
        baseline=not no_baseline,
        progress=not quiet,
    )
    folder = out or Path("runs") / time.strftime("retrieval-%Y%m%d-%H%M%S")
    written = run.save(folder)
    click.echo(run.table())
    click.echo(f"results: {', '.join(str(p) for p in written)}")


class CorpusPath(click.Path):
    """An existing file or folder, or `demo` (the bundled demo corpus)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "demo":
            return value
        return super().convert(value, param, ctx)


@eval_group.command(name="answers")
@click.option(
    "--demo",
    is_flag=True,
    help="The bundled demo question set over the demo corpus (White House and TASS, 2022); "
    "the same as --queries data/demo/questions.jsonl --corpus demo.",
)
@click.option(
    "--queries",
    "queries_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Questions: a MultiHop-RAG file or JSON Lines (see docs/evaluation.md; default: the "
    "bundled MultiHop-RAG dev split).",
)
@click.option(
    "--corpus",
    type=CorpusPath(exists=True, path_type=Path),
    help="Articles the questions are about, any file or folder `ingest` reads, or `demo` (the "
    "bundled demo corpus; default with MultiHop-RAG questions: the bundled corpus). Not with "
    "--url.",
)
@click.option(
    "--url", help="Ask a running server over its HTTP API instead, e.g. http://host:7860."
)
@click.option(
    "--token", envvar="NEWS_ASSISTANT_EVAL_TOKEN", help="The server's API token (with --url)."
)
@llm_options
@click.option(
    "--limit", type=click.IntRange(1), help="Only the first N questions (after --sample)."
)
@click.option("--sample", type=click.IntRange(1), help="A random N questions (see --seed).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --sample.")
@click.option(
    "-k",
    "k",
    type=click.IntRange(10, 50),
    default=10,
    show_default=True,
    help="Passages an answer.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for answers, summary, report and charts (default: runs/eval-<time>); "
    "run again with the same folder to finish an interrupted run.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_obj
@errors_to_messages
def eval_answers(
    engine: Engine,
    demo: bool,
    queries_path: Path | None,
    corpus: Path | str | None,
    url: str | None,
    token: str | None,
    llm_url: str | None,
    llm_model: str | None,
    no_llm: bool,
    limit: int | None,
    sample: int | None,
    seed: int,
    k: int,
    out: Path | None,
    quiet: bool,
) -> None:
    """Answer a question benchmark end to end and score it: answers, retrieval, citations,
    refusals and latency, overall and per question type, with a Markdown report and charts.

    In this process (extractive, or with --llm-url the LLM) over the corpus's own index, or
    against a running server with --url. See docs/evaluation.md."""
    import time

    from evaluation.answers import run_answer_eval
    from evaluation.questions import DEFAULT_QUERIES, DEMO_QUERIES
    from evaluation.report import format_summary, write_report

    if url and (corpus or llm_url or llm_model):
        raise click.UsageError("with --url the server answers from its own index and LLM")
    if demo:
        if queries_path:
            raise click.UsageError("--demo brings its own questions; leave out --queries")
        queries_path = DEMO_QUERIES
        corpus = None if url else corpus or "demo"
    run, notes = run_answer_eval(
        engine=with_llm_settings(engine, llm_url, llm_model),
        questions_path=queries_path or DEFAULT_QUERIES,
        corpus=corpus,
        out=out or Path("runs") / time.strftime("eval-%Y%m%d-%H%M%S"),
        url=url,
        token=token,
        k=k,
        use_llm=False if no_llm else None,
        limit=limit,
        sample=sample,
        seed=seed,
        progress=not quiet,
    )
    for note in notes:
        click.echo(f"note: {note}", err=True)
    written = write_report(run)
    click.echo(format_summary(run.summary))
    click.echo(f"report: {written[0]}; answers and summary in {run.out}")
