"""The `news-assistant` command line: ingest, search, stats, delete, and more."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from assistant.answer import Answer, format_date
from assistant.engine import Engine
from assistant.retrieve import Filters, Passage
from index.config import quiet_offline_environment
from index.demo import DEFAULT_DEMO, DEMO_CORPORA
from index.errors import NewsAssistantError
from index.loaders import FIELDS, FORMATS
from index.watch import Watcher, feed_list, parse_every
from index.web_pages import is_url
from serving.cli_eval import eval_group
from serving.cli_options import (
    EXIT_INCONSISTENT,
    EXIT_PARTIAL,
    errors_to_messages,
    filter_options,
    llm_options,
    with_llm_settings,
)
from serving.config import AppSettings, app_settings
from serving.inputs import MAX_K, MAX_SEARCH_K, MIN_K, parse_filters
from serving.remote_ingest import AppClient, ingest_target, send_to_app


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
        settings = AppSettings(**changes)
    except ValueError as error:
        raise click.ClickException(f"configuration: {error}") from error
    ctx.obj = Engine(settings)
    ctx.call_on_close(ctx.obj.index.settle)


def _require_articles(engine: Engine) -> None:
    """Questions to an empty index get told how to fill it, not "the articles do not say"."""
    if engine.index.is_empty():
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
@click.argument("paths", nargs=-1, required=True, metavar="PATH_OR_URL...")
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
@click.option("--app-url", help="Send the articles to this running app [app_url].")
@click.option("--token", help="The app's ingest token [ingest_token].")
@click.pass_obj
@errors_to_messages
def ingest(
    engine: Engine,
    paths: tuple[str, ...],
    fmt: str | None,
    fields: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    app_url: str | None,
    token: str | None,
) -> None:
    """Add articles from files or folders (jsonl, json, csv, txt, md, html) and from the web.

    An http(s) URL is an RSS or Atom feed (each item's page is fetched) or an article page;
    only the servers named here are asked, politely (robots.txt, two requests at a time, a
    re-fetch of an unchanged page sends nothing new). Re-ingesting unchanged articles does
    nothing; changed ones replace their old chunks. Exits 3 when some records or pages were
    bad (each is listed with file, line and field, or URL and reason).

    While an app serves the embedded store (or with --app-url / app_url), the files are sent to
    its POST /api/ingest with the ingest token, and its report printed."""
    settings = app_settings(engine.settings)
    target = ingest_target(settings, app_url)
    if target is not None:
        app = AppClient(
            target, token or settings.ingest_token, settings.collection, fmt, _parse_fields(fields)
        )
        say = None if quiet else lambda line: click.echo(line, err=True)
        report = send_to_app(app, paths, settings.ingest_max_bytes, say=say)
    else:
        report = engine.index.ingest(
            [item if is_url(item) else Path(item) for item in paths],
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


def _filters(
    date_from: str | None, date_to: str | None, outlets: tuple[str, ...]
) -> Filters | None:
    try:
        return parse_filters(date_from, date_to, outlets)
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
@click.option("-k", "k", type=click.IntRange(MIN_K, MAX_SEARCH_K), help="How many passages.")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@errors_to_messages
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


def _print_short_answer(answer: Answer) -> None:
    """The short answer (and a mechanical verdict) again, set apart from the answer."""
    for short in answer.short_answers:
        click.secho(f"\nShort answer: {short.text} [{short.citation}]", bold=True)
    if answer.verdict:
        click.secho(f"\nVerdict: {answer.verdict} (follows from the cited evidence)", bold=True)


def _print_notes(answer: Answer) -> None:
    for note in answer.notes:
        click.echo(f"note: {note}", err=True)


@cli.command()
@click.argument("question")
@click.option(
    "-k", "k", type=click.IntRange(MIN_K, MAX_K), help="How many passages to answer from."
)
@filter_options
@llm_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_obj
@errors_to_messages
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
    engine = with_llm_settings(engine, llm_url, llm_model)
    filters = _filters(date_from, date_to, outlets)
    use_llm = False if no_llm else None
    if as_json:
        answer = engine.ask(question, filters=filters, k=k, use_llm=use_llm)
        click.echo(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return
    answer = _stream_answer(engine, question, [], filters=filters, k=k, use_llm=use_llm)
    _print_short_answer(answer)
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
@click.option(
    "-k", "k", type=click.IntRange(MIN_K, MAX_K), help="How many passages to answer from."
)
@filter_options
@llm_options
@click.pass_obj
@errors_to_messages
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
    engine = with_llm_settings(engine, llm_url, llm_model)
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
        _print_short_answer(answer)
        _print_sources(answer)
        _print_notes(answer)
        click.echo()
        history.append((question, answer.text))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@errors_to_messages
def stats(engine: Engine, as_json: bool) -> None:
    """What the index holds."""
    engine.index.refresh()
    summary = engine.corpus_summary()
    info = {
        "storage": str(engine.settings.storage_dir),
        "chroma": (
            f"{engine.settings.chroma_host}:{engine.settings.chroma_port}"
            if engine.settings.chroma_host
            else str(engine.settings.chroma_dir)
        ),
        "collection": engine.settings.collection,
        "articles": summary.articles,
        "chunks": summary.chunks,
        "keyword_index_chunks": engine.index.keyword_count(),
        "first_date": summary.first_date,
        "last_date": summary.last_date,
        "outlets": dict(summary.outlets[:20]),
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
@errors_to_messages
def delete(engine: Engine, article_ids: tuple[str, ...]) -> None:
    """Delete articles by id (as shown by `search --json`)."""
    removed = engine.index.delete(article_ids)
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
@errors_to_messages
def check(engine: Engine, repair: bool, no_vectors: bool, as_json: bool) -> None:
    """Check that every article is stored whole and the keyword index matches Chroma.

    With --repair, an article left incomplete by an interrupted ingest loses its chunks (ingest
    the same files again to put it back) and the keyword index is rebuilt from Chroma.
    Exits 4 when errors remain."""
    report = engine.index.check(vectors=not no_vectors)
    repaired = engine.index.repair(report) if repair and not report.ok else None
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
                + (
                    f", saved {repaired.vectors_saved} chunks' vectors with it"
                    if repaired.vectors_saved
                    else ""
                )
            )
            if repaired.deleted_articles:
                click.echo("ingest the same files again to put these articles back:")
                for article_id in repaired.deleted_articles:
                    click.echo(f"  {article_id}")
            click.echo(f"after repair: {final.summary()}")
    if not final.ok:
        sys.exit(EXIT_INCONSISTENT)


@cli.command()
@click.option(
    "--corpus",
    type=click.Choice(list(DEMO_CORPORA)),
    help="Which demo corpus; it goes into the collection of its name unless --collection is "
    f"given. Default: the one of the collection, else {DEFAULT_DEMO!r}.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
@errors_to_messages
def demo(ctx: click.Context, corpus: str | None, quiet: bool) -> None:
    """Build the index of a bundled demo corpus (if its collection is empty)."""
    engine: Engine = ctx.obj
    if corpus and not (ctx.parent and ctx.parent.params.get("collection")):
        collection = DEMO_CORPORA[corpus].collection
        engine = Engine(engine.settings.with_changes(collection=collection))
    report = engine.index.ensure_demo(progress=not quiet, corpus=corpus)
    where = f"collection {engine.settings.collection!r}"
    if report:
        click.echo(f"{where}: {report.summary()}")
    else:
        click.echo(f"{where} already holds {engine.index.count()} chunks")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--no-demo", is_flag=True, help="Do not build the demo index into an empty store.")
@click.option(
    "--api-only",
    is_flag=True,
    help="Serve only the HTTP API (/api, /v1, /docs, /widget.js), no web UI (serve_ui=false).",
)
@click.option(
    "--watch",
    "watch_feeds",
    multiple=True,
    metavar="FEED_URL",
    help="Also poll this feed while serving, as `watch` does (repeatable) [feeds].",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
@errors_to_messages
def serve(
    engine: Engine,
    host: str,
    port: int,
    no_demo: bool,
    api_only: bool,
    watch_feeds: tuple[str, ...],
    quiet: bool,
) -> None:
    """Serve the web app: chat UI at /, JSON API at /api, OpenAI-compatible API at /v1.

    On first start an empty store gets the demo corpus (unless --no-demo or demo_on_empty=false).
    With ingest_token set, POST /api/ingest takes new articles while it serves."""
    from serving.web import serve as run_server

    settings = app_settings(engine.settings)
    if no_demo:
        settings = settings.with_changes(demo_on_empty=False)
    if api_only:
        settings = settings.with_changes(serve_ui=False)
    if watch_feeds:
        settings = settings.with_changes(feeds=[*settings.feeds, *watch_feeds])
    run_server(settings, host=host, port=port, progress=not quiet)


@cli.command()
@click.argument("feeds", nargs=-1, metavar="[FEED_URL]...")
@click.option(
    "--opml",
    "opml_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also watch the feeds an OPML file lists (repeatable).",
)
@click.option("--every", metavar="INTERVAL", help="How often to poll: 30s, 15m, 1h [feeds_every].")
@click.option("--once", is_flag=True, help="Poll once and exit (3 when a feed failed).")
@click.pass_obj
@errors_to_messages
def watch(
    engine: Engine,
    feeds: tuple[str, ...],
    opml_files: tuple[Path, ...],
    every: str | None,
    once: bool,
) -> None:
    """Keep the archive current from feeds: poll, ingest new and changed items, repeat.

    Watches the FEED_URLs, the --opml files' feeds and the feeds and feeds_opml settings. Each
    cycle prints one line; an unchanged feed costs one conditional request and writes nothing;
    a feed that fails is reported and tried less often until it answers again. Ctrl-C (or
    SIGTERM) stops it after the feed it is on."""
    settings = app_settings(engine.settings)
    opml = [*opml_files, *([settings.feeds_opml] if settings.feeds_opml else [])]
    urls = feed_list([*feeds, *settings.feeds], opml)
    if not urls:
        raise click.UsageError(
            "no feeds to watch: give FEED_URLs, --opml FILE, or set feeds / feeds_opml"
        )
    try:
        interval = parse_every(every or settings.feeds_every)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--every") from error
    watcher = Watcher(engine.index, urls, every=interval)
    if once:
        report = watcher.poll_once()
        click.echo(report.line())
        if not report.ok:
            sys.exit(EXIT_PARTIAL)
        return
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: now
        stop.set()
        click.echo("stopping after the current feed (Ctrl-C again to quit now)", err=True)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, request_stop) for number in handled}
    click.echo(f"watching {len(urls)} feed(s) every {every or settings.feeds_every}", err=True)
    try:
        watcher.run(stop, on_cycle=lambda report: click.echo(report.line()))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    click.echo("stopped", err=True)


cli.add_command(eval_group)


def main() -> None:
    """The `news-assistant` command."""
    quiet_offline_environment()
    cli(prog_name="news-assistant")


if __name__ == "__main__":
    main()
