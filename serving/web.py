"""The web app: the HTTP API with the page (serving.page) mounted at /, served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI

from assistant.engine import Engine
from index.errors import ConfigError
from index.watch import Watcher, feed_list, parse_every
from serving.api import Collections, create_api
from serving.config import AppSettings, app_settings, origin_problem

log = logging.getLogger(__name__)


def _auth(settings: AppSettings) -> tuple[str, str] | None:
    if not settings.ui_auth:
        return None
    user, sep, password = settings.ui_auth.partition(":")
    if not sep or not user or not password:
        raise ConfigError("ui_auth: use 'user:password'")
    return user, password


API_TOKEN_WITHOUT_LOGIN = (
    "api_token is set but ui_auth is not: the web page cannot send the token, so its Gradio "
    "endpoints (/gradio_api/*) would have to stay open. Set ui_auth = 'user:password' "
    "(NEWS_ASSISTANT_UI_AUTH) to put a login on the page, or serve_ui = false "
    "(`news-assistant serve --api-only`, NEWS_ASSISTANT_SERVE_UI=false) to serve only the HTTP API"
)


def check_exposure(settings: AppSettings) -> None:
    """Refuse settings that would leave a route to the engine open, saying what to set instead."""
    _auth(settings)
    for origin in settings.cors_origins:  # settings changed in code skip the field validator
        if problem := origin_problem(origin):
            raise ConfigError(problem)
    if settings.api_token and not settings.ui_auth and settings.serve_ui:
        raise ConfigError(API_TOKEN_WITHOUT_LOGIN)


def create_app(engine: Engine, settings: AppSettings | None = None) -> FastAPI:
    """The HTTP API with the Gradio UI mounted at / (unless `serve_ui` is off), sharing one
    engine; settings that would leave the engine open raise `ConfigError` (`check_exposure`).

    `settings` (default: the engine's) gives the serving knobs: CORS, token, login, queue.
    Gradio is imported only for the page (serving.page): an API-only app starts 4 s sooner."""
    settings = settings or app_settings(engine.settings)
    check_exposure(settings)
    collections = Collections(engine)  # the page and the API share the engine of each archive
    app = create_api(engine, settings, collections=collections)
    watch_feeds(app, engine, settings)
    if not settings.serve_ui:
        return app
    from serving.page import mount_page

    return mount_page(app, engine, collections, settings, auth=_auth(settings))


def watch_feeds(app: FastAPI, engine: Engine, settings: AppSettings) -> Watcher | None:
    """Poll the configured feeds into the engine's archive while `app` runs (None: no feeds)."""
    feeds = feed_list(settings.feeds, [settings.feeds_opml] if settings.feeds_opml else [])
    if not feeds:
        return None
    # The engine's own Index: what the watcher adds is what the app's searches see.
    watcher = Watcher(engine.index, feeds, every=parse_every(settings.feeds_every))
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[Any]:
        watcher.start()
        try:
            async with inner(running) as state:
                yield state
        finally:
            await asyncio.to_thread(watcher.stop)  # it finishes the feed it is on

    app.router.lifespan_context = lifespan
    app.state.watcher = watcher
    return watcher


def prepare(engine: Engine, *, progress: bool = True) -> None:
    """Load the model and the indexes before the first request; build the demo if empty."""
    served = app_settings(engine.settings)
    if served.demo_on_empty:
        report = engine.index.ensure_demo(progress=progress)
        if report:
            # A closing line under the progress bar, not a warning: logs stay quiet by default.
            if progress:
                print(f"built the demo index: {report.summary()}", file=sys.stderr, flush=True)
            log.info("built the demo index: %s", report.summary())
    # The archive's indexes load while the model does, on threads of their own: the keyword
    # index and the corpus view on one, Chroma's vector index on another (at 1M chunks, 6 s
    # and 8 s, each mostly outside the GIL); then one search warms the rest.
    failed: list[BaseException] = []
    takes_articles = bool(served.ingest_token or served.feeds or served.feeds_opml)

    def loading(target: Callable[[], object], name: str) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except BaseException as error:  # raised again below, on the caller's thread
                failed.append(error)

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    def load_archive() -> None:
        engine.index.refresh()
        engine.retriever.view()
        vectors.join()  # the summary counts Chroma's chunks: 4 s the first time at 1M
        engine.prepare_answers()
        if takes_articles:
            engine.index.ready_to_ingest()

    def load_vectors() -> None:
        engine.store.warm_vector_index()
        engine.store.count()

    vectors = loading(load_vectors, "load-vector-index")
    threads = [vectors, loading(load_archive, "load-archive")]
    engine.embedder.embed_query("warm up")
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    # The chunk vectors searches read from the keyword index's files, read into the page cache
    # once the app is ready (1.4 GB at 1M chunks, 2-3 s), on a thread nothing waits for: read
    # while the indexes loaded, they cost the start 1-3 s.
    read = engine.store.keyword.snapshot().read_ahead
    threading.Thread(target=read, name="read-ahead", daemon=True).start()
    engine.search("warm up", k=1)
    if takes_articles:  # after the first answer: the first article need not wait for it
        threading.Thread(target=_load_chunk_model, args=(engine,), name="load-model").start()


def _load_chunk_model(engine: Engine) -> None:
    try:
        engine.embedder.warm_bulk()
    except Exception as error:  # the first ingest will load it again, and say why if it fails
        log.warning("could not load the embedding model for ingest ahead of time: %s", error)


def serve(
    settings: AppSettings, *, host: str = "127.0.0.1", port: int = 7860, progress: bool = True
) -> None:
    """Prepare one engine for the process and serve the app until interrupted, with the
    connection limits of `settings` (serving.server)."""
    from serving.server import run_app

    check_exposure(settings)  # before the model and the store load
    engine = Engine(settings)
    prepare(engine, progress=progress)
    app = create_app(engine)
    print(f"News Assistant on http://{host}:{port}  (API docs: /docs)", flush=True)
    run_app(app, settings, host=host, port=port)
