"""The `news-assistant` command line: ingest, search, stats, delete, and more."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from assistant.answer import Answer, format_date
from assistant.engine import Engine
from assistant.retrieve import Filters, Passage
from index.articles import parse_date
from index.config import Settings
from index.errors import NewsAssistantError
from index.loaders import FIELDS, FORMATS

F = TypeVar("F", bound=Callable[..., Any])

EXIT_PARTIAL = 3  # some input records were bad; the good ones went in
EXIT_INCONSISTENT = 4  # `check` found errors that remain


def _errors_to_messages(command: F) -> F:
    """Catch the product's errors at the edge and print them without a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NewsAssistantError as error:
            raise click.ClickException(str(error)) from error
        except ValueError as error:  # settings that fail validation
            raise click.ClickException(str(error)) from error

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option("--storage", type=click.Path(path_type=Path), help="Storage folder.")
@click.option("--collection", help="Chroma collection name.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, storage: Path | None, collection: str | None, verbose: int) -> None:
    """Ask questions of a news archive and get answers you can check."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "chromadb", "sentence_transformers", "bm25s"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    changes: dict[str, Any] = {}
    if storage:
        changes["storage_dir"] = storage
    if collection:
        changes["collection"] = collection
    try:
        settings = Settings(**changes)
    except ValueError as error:
        raise click.ClickException(f"configuration: {error}") from error
    ctx.obj = Engine(settings)


def _require_articles(engine: Engine) -> None:
    """Questions to an empty index get told how to fill it, not "the articles do not say"."""
    if engine.store.count() == 0:
        settings = engine.settings
        raise click.ClickException(
            f"no articles in {settings.storage_dir} (collection {settings.collection!r}): "
            "`news-assistant demo` indexes the bundled demo corpus, "
            "`news-assistant ingest FILES` adds your own"
        )


def _parse_fields(values: tuple[str, ...]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for value in values:
        name, sep, key = value.partition("=")
        if not sep or name not in FIELDS or not key:
            raise click.BadParameter(
                f"{value!r}: use NAME=KEY with NAME one of {', '.join(FIELDS)}",
                param_hint="--field",
            )
        fields[name] = key
    return fields


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Read every file as this format.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=KEY",
    help="Map a field, e.g. --field body=story_text (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
@_errors_to_messages
def ingest(
    engine: Engine,
    paths: tuple[Path, ...],
    fmt: str | None,
    fields: tuple[str, ...],
    as_json: bool,
    quiet: bool,
) -> None:
    """Add articles from files or folders (jsonl, json, csv, txt, md, html).

    Re-ingesting unchanged articles does nothing; changed ones replace their old chunks.
    Exits 3 when some records were bad (each is listed with file, line and field)."""
    from index.pipeline import ingest as run_ingest

    report = run_ingest(
        paths,
        settings=engine.settings,
        store=engine.store,
        embedder=engine.embedder,
        fmt=fmt,
        fields=_parse_fields(fields),
        progress=not quiet,
    )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for issue in report.issues:
            click.echo(f"skipped {issue}", err=True)
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
        click.echo(report.summary())
    if report.issues:
        sys.exit(EXIT_PARTIAL)


def _filters(date_from: str | None, date_to: str | None, outlets: tuple[str, ...]) -> Filters:
    try:
        return Filters(
            date_from=parse_date(date_from) or None,
            date_to=parse_date(date_to) or None,
            outlets=tuple(outlets),
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def _print_passages(passages: list[Passage]) -> None:
    if not passages:
        click.echo("No passages found.")
    for rank, p in enumerate(passages, start=1):
        head = " | ".join(x for x in (p.source, p.published) if x)
        click.secho(f"[{rank}] {p.title}", bold=True)
        click.echo(f"    {head}  score {p.score:.4f}")
        if p.url:
            click.echo(f"    {p.url}")
        text = " ".join(p.text.split())
        click.echo(f"    {text[:400]}{'…' if len(text) > 400 else ''}\n")


@cli.command()
@click.argument("question")
@click.option("-k", "k", type=click.IntRange(1, 100), help="How many passages.")
@click.option("--from", "date_from", help="Only articles on or after this date.")
@click.option("--to", "date_to", help="Only articles on or before this date.")
@click.option("--outlet", "outlets", multiple=True, help="Only this outlet (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@_errors_to_messages
def search(
    engine: Engine,
    question: str,
    k: int | None,
    date_from: str | None,
    date_to: str | None,
    outlets: tuple[str, ...],
    as_json: bool,
) -> None:
    """Find the passages that best match QUESTION (dense + keyword, fused)."""
    _require_articles(engine)
    passages = engine.search(question, k=k, filters=_filters(date_from, date_to, outlets))
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in passages], indent=2, ensure_ascii=False))
    else:
        _print_passages(passages)


def _llm_settings(engine: Engine, llm_url: str | None, llm_model: str | None) -> Engine:
    """The engine, or a new one when --llm-url / --llm-model change the settings."""
    changes: dict[str, Any] = {}
    if llm_url:
        changes["llm_url"] = llm_url
    if llm_model:
        changes["llm_model"] = llm_model
    return Engine(engine.settings.with_changes(**changes)) if changes else engine


def _print_sources(answer: Answer) -> None:
    """The numbered sources of an answer, or the closest articles of a refusal."""
    if answer.refused:
        closest = answer.closest_articles()
        if closest:
            click.echo("\nClosest articles:")
        for passage in closest:
            when = ", ".join(x for x in (passage.source, format_date(passage.published)) if x)
            click.echo(f"  - {passage.title} ({when})" + (f" {passage.url}" if passage.url else ""))
        return
    if answer.citations:
        click.echo("\nSources:")
    for citation in answer.citations:
        p = citation.passage
        when = ", ".join(x for x in (p.source, format_date(p.published)) if x)
        click.secho(f"[{citation.number}] {p.title}", bold=True)
        click.echo(f"    {when}" + (f"  {p.url}" if p.url else ""))
        quote = " ".join(citation.quote.split())
        click.echo(f"    “{quote}” (characters {citation.quote_start}-{citation.quote_end})")


def _print_notes(answer: Answer) -> None:
    for note in answer.notes:
        click.echo(f"note: {note}", err=True)


_LLM_OPTIONS = (
    click.option("--llm-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1."),
    click.option("--llm-model", help="Model name to ask the server for."),
    click.option("--no-llm", is_flag=True, help="Answer extractively even if an LLM is set."),
)


def _with_llm_options(command: F) -> F:
    for option in reversed(_LLM_OPTIONS):
        command = option(command)
    return command


@cli.command()
@click.argument("question")
@click.option("-k", "k", type=click.IntRange(1, 50), help="How many passages to answer from.")
@click.option("--from", "date_from", help="Only articles on or after this date.")
@click.option("--to", "date_to", help="Only articles on or before this date.")
@click.option("--outlet", "outlets", multiple=True, help="Only this outlet (repeatable).")
@_with_llm_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_obj
@_errors_to_messages
def ask(
    engine: Engine,
    question: str,
    k: int | None,
    date_from: str | None,
    date_to: str | None,
    outlets: tuple[str, ...],
    llm_url: str | None,
    llm_model: str | None,
    no_llm: bool,
    as_json: bool,
) -> None:
    """Answer QUESTION from the articles, citing each sentence's source as [n].

    Without an LLM (the default) the answer is made of the articles' own sentences; with
    --llm-url (or llm_url in the settings) an OpenAI-compatible LLM writes it, and every
    citation is checked against its passage. Prints the refusal and the closest articles
    when the articles do not answer."""
    _require_articles(engine)
    engine = _llm_settings(engine, llm_url, llm_model)
    filters = _filters(date_from, date_to, outlets)
    use_llm = False if no_llm else None
    if as_json:
        answer = engine.ask(question, filters=filters, k=k, use_llm=use_llm)
        click.echo(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return
    answer = _stream_answer(engine, question, [], filters=filters, k=k, use_llm=use_llm)
    _print_sources(answer)
    _print_notes(answer)


def _stream_answer(
    engine: Engine,
    question: str,
    history: list[tuple[str, str]],
    *,
    filters: Filters | None,
    k: int | None,
    use_llm: bool | None,
) -> Answer:
    """Print the answer as it comes, and return the final one."""
    final: Answer | None = None
    for event in engine.ask_stream(
        question, history=history, filters=filters, k=k, use_llm=use_llm
    ):
        if event.kind == "delta":
            click.echo(event.text, nl=False)
        elif event.answer is not None:
            final = event.answer
    click.echo()
    assert final is not None
    return final


@cli.command()
@click.option("-k", "k", type=click.IntRange(1, 50), help="How many passages to answer from.")
@click.option("--from", "date_from", help="Only articles on or after this date.")
@click.option("--to", "date_to", help="Only articles on or before this date.")
@click.option("--outlet", "outlets", multiple=True, help="Only this outlet (repeatable).")
@_with_llm_options
@click.pass_obj
@_errors_to_messages
def chat(
    engine: Engine,
    k: int | None,
    date_from: str | None,
    date_to: str | None,
    outlets: tuple[str, ...],
    llm_url: str | None,
    llm_model: str | None,
    no_llm: bool,
) -> None:
    """Talk with the assistant: one question a line, follow-ups understood.

    Reads questions from standard input; /clear forgets the conversation, /quit ends it."""
    _require_articles(engine)
    engine = _llm_settings(engine, llm_url, llm_model)
    filters = _filters(date_from, date_to, outlets)
    use_llm = False if no_llm else None
    history: list[tuple[str, str]] = []
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo("Ask about the news. /clear forgets the conversation, /quit ends it.")
    while True:
        if interactive:
            click.echo("> ", nl=False)
        line = sys.stdin.readline()
        if not line:
            break
        question = line.strip()
        if not question:
            continue
        if question in ("/quit", "/exit"):
            break
        if question == "/clear":
            history.clear()
            click.echo("(conversation cleared)")
            continue
        try:
            answer = _stream_answer(
                engine, question, history, filters=filters, k=k, use_llm=use_llm
            )
        except NewsAssistantError as error:
            click.echo(f"error: {error}", err=True)
            continue
        if answer.standalone_question != question:
            click.echo(f"(understood as: {answer.standalone_question})", err=True)
        _print_sources(answer)
        _print_notes(answer)
        click.echo()
        history.append((question, answer.text))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@_errors_to_messages
def stats(engine: Engine, as_json: bool) -> None:
    """What the index holds."""
    store = engine.store
    store.sync_keyword_index(force=True)
    records = store.keyword.records
    articles = {r.metadata["article_id"] for r in records}
    dates = sorted(str(r.metadata["published"]) for r in records if r.metadata.get("published"))
    info = {
        "storage": str(engine.settings.storage_dir),
        "chroma": (
            f"{engine.settings.chroma_host}:{engine.settings.chroma_port}"
            if engine.settings.chroma_host
            else str(engine.settings.chroma_dir)
        ),
        "collection": engine.settings.collection,
        "articles": len(articles),
        "chunks": store.count(),
        "keyword_index_chunks": len(store.keyword),
        "first_date": dates[0] if dates else None,
        "last_date": dates[-1] if dates else None,
        "outlets": dict(store.outlets()[:20]),
    }
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    for key, value in info.items():
        if key == "outlets":
            click.echo("outlets:")
            for name, count in dict(value).items():  # type: ignore[call-overload]
                click.echo(f"  {count:6d}  {name}")
        else:
            click.echo(f"{key}: {value}")


@cli.command()
@click.argument("article_ids", nargs=-1, required=True)
@click.pass_obj
@_errors_to_messages
def delete(engine: Engine, article_ids: tuple[str, ...]) -> None:
    """Delete articles by id (as shown by `search --json`)."""
    from index.pipeline import delete_articles

    removed = delete_articles(list(article_ids), store=engine.store)
    if not removed:
        raise click.ClickException(f"no article with id {', '.join(article_ids)}")
    click.echo(f"deleted {removed} chunks of {len(article_ids)} article(s)")


@cli.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Delete the chunks of broken articles and rebuild the keyword index from Chroma.",
)
@click.option("--no-vectors", is_flag=True, help="Do not read every vector (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
@_errors_to_messages
def check(engine: Engine, repair: bool, no_vectors: bool, as_json: bool) -> None:
    """Check that every article is stored whole and the keyword index matches Chroma.

    With --repair, an article left incomplete by an interrupted ingest loses its chunks (ingest
    the same files again to put it back) and the keyword index is rebuilt from Chroma.
    Exits 4 when errors remain."""
    from index.check import check_store, repair_store

    report = check_store(engine.store, vectors=not no_vectors)
    repaired = repair_store(engine.store, report) if repair and not report.ok else None
    final = repaired.after if repaired else report
    if as_json:
        out = report.as_dict()
        if repaired:
            out["repair"] = repaired.as_dict()
        click.echo(json.dumps(out, indent=2))
    else:
        for problem in report.problems:
            click.echo(str(problem), err=True)
        click.echo(report.summary())
        if repaired:
            click.echo(
                f"repaired: deleted {repaired.deleted_chunks} chunks of "
                f"{len(repaired.deleted_articles)} article(s)"
                + (", rebuilt the keyword index" if repaired.keyword_rebuilt else "")
            )
            if repaired.deleted_articles:
                click.echo("ingest the same files again to put these articles back:")
                for article_id in repaired.deleted_articles:
                    click.echo(f"  {article_id}")
            click.echo(f"after repair: {final.summary()}")
    if not final.ok:
        sys.exit(EXIT_INCONSISTENT)


@cli.command()
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
@_errors_to_messages
def demo(engine: Engine, quiet: bool) -> None:
    """Build the index of the bundled demo corpus (if the store is empty)."""
    from index.demo import ensure_demo_index

    report = ensure_demo_index(
        settings=engine.settings, store=engine.store, embedder=engine.embedder, progress=not quiet
    )
    click.echo(report.summary() if report else f"index already holds {engine.store.count()} chunks")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--no-demo", is_flag=True, help="Do not build the demo index into an empty store.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
@_errors_to_messages
def serve(engine: Engine, host: str, port: int, no_demo: bool, quiet: bool) -> None:
    """Serve the web app: chat UI at /, JSON API at /api, OpenAI-compatible API at /v1.

    On first start an empty store gets the demo corpus (unless --no-demo or demo_on_empty=false)."""
    from assistant.web import serve as run_server

    settings = engine.settings.with_changes(demo_on_empty=False) if no_demo else engine.settings
    run_server(settings, host=host, port=port, progress=not quiet)


@cli.group(name="eval")
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
@_errors_to_messages
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

    from assistant.evaluate import DEFAULT_CORPUS, DEFAULT_QUERIES, run_retrieval_eval

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


@eval_group.command(name="answers")
@click.option(
    "--queries",
    "queries_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Questions: a MultiHop-RAG file or JSON Lines (see the README; default: the "
    "bundled MultiHop-RAG dev split).",
)
@click.option(
    "--corpus",
    type=click.Path(exists=True, path_type=Path),
    help="Articles the questions are about, any file or folder `ingest` reads (default with "
    "MultiHop-RAG questions: the bundled corpus). Not with --url.",
)
@click.option(
    "--url", help="Ask a running server over its HTTP API instead, e.g. http://host:7860."
)
@click.option(
    "--token", envvar="NEWS_ASSISTANT_EVAL_TOKEN", help="The server's API token (with --url)."
)
@_with_llm_options
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
@_errors_to_messages
def eval_answers(
    engine: Engine,
    queries_path: Path | None,
    corpus: Path | None,
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
    against a running server with --url. See the README, "Evaluating answers"."""
    import time

    from assistant.benchmark import run_answer_eval
    from assistant.evaluate import DEFAULT_QUERIES
    from assistant.report import format_summary, write_report

    if url and (corpus or llm_url or llm_model):
        raise click.UsageError("with --url the server answers from its own index and LLM")
    run, notes = run_answer_eval(
        engine=_llm_settings(engine, llm_url, llm_model),
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


def main() -> None:
    cli(prog_name="news-assistant")


if __name__ == "__main__":
    main()
