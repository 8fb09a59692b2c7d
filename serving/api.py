"""The HTTP API: JSON ask and search, health, and an OpenAI-compatible chat endpoint."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from assistant.answer import Answer, StreamEvent
from assistant.engine import Engine
from index.errors import NewsAssistantError, StoreUnavailableError
from serving.config import AppSettings, app_settings
from serving.errors import Unauthorized, error_response, install_error_handlers
from serving.ingest_api import INGEST_PATH, ingest_router, install_ingest_errors
from serving.inputs import (
    MAX_QUESTION,
    MAX_TURN,
    STATIC_DIR,
    answer_json,
    citation_json,
    passage_json,
)
from serving.middleware import (
    CORS_METHODS,
    BodyLimit,
    CrashAsJson,
    FramePolicy,
    MethodRules,
    OriginPolicy,
    bearer_matches,
)
from serving.schemas import (
    MODEL_ID,
    AskRequest,
    AskResponse,
    ChatCompletionRequest,
    HealthResponse,
    SearchRequest,
    SearchResponse,
    Turn,
)


def _token_check(settings: AppSettings) -> Any:
    """A dependency that asks for `Authorization: Bearer <api_token>` when one is configured."""

    # async, as are the other dependencies: a sync one waits for a thread of the pool that
    # searches share, and a stuck store could hold them all.
    async def check(request: Request) -> None:
        if settings.api_token and not bearer_matches(
            request.headers.get("authorization"), settings.api_token
        ):
            raise Unauthorized

    return check


def pair_turns(messages: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """(role, text) messages as the engine's (user, assistant) turns; unanswered ones dropped."""
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for role, text in messages:
        if role == "user":
            pending = text
        elif role == "assistant" and pending is not None:
            pairs.append((pending, text))
            pending = None
    return tuple(pairs)


def _history(turns: Sequence[Turn]) -> tuple[tuple[str, str], ...]:
    return pair_turns([(t.role, t.content) for t in turns])


def _chat_question(request: ChatCompletionRequest) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The last user message is the question; earlier user/assistant turns are the history."""
    turns = [m for m in request.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise ValueError("messages: the last message must be a non-empty user message")
    question = turns[-1].text()
    if len(question) > MAX_QUESTION:
        raise ValueError(f"messages: the question is longer than {MAX_QUESTION} characters")
    return question, pair_turns([(m.role, m.text()[:MAX_TURN]) for m in turns[:-1]])


def _sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass(frozen=True)
class _ChatIds:
    """What every chunk of one chat completion repeats."""

    ident: str
    created: int
    model: str

    def chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }


def _chat_completion(ids: _ChatIds, answer: Answer) -> dict[str, Any]:
    return {
        "id": ids.ident,
        "object": "chat.completion",
        "created": ids.created,
        "model": ids.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "citations": [citation_json(c) for c in answer.citations],
        **_answer_extras(answer),
    }


def _answer_extras(answer: Answer) -> dict[str, Any]:
    """What OpenAI's schema has no field for: refusal, mode, short answer and verdict."""
    data = answer.as_dict()
    return {key: data[key] for key in ("refused", "mode", "short_answer", "verdict")}


def _chat_events(ids: _ChatIds, stream: Callable[[], Iterator[StreamEvent]]) -> Iterator[str]:
    """The answer as OpenAI's server-sent chunks; the last one carries the citations."""
    yield _sse(ids.chunk({"role": "assistant"}, None))
    try:
        for event in stream():
            if event.kind == "delta" and event.text:
                yield _sse(ids.chunk({"content": event.text}, None))
            elif event.kind == "answer" and event.answer is not None:
                final = ids.chunk({}, "stop")
                final["citations"] = [citation_json(c) for c in event.answer.citations]
                final.update(_answer_extras(event.answer))
                yield _sse(final)
    except NewsAssistantError as error:
        # Headers are gone; tell the client in the stream, as OpenAI servers do.
        yield _sse({"error": {"message": str(error), "type": type(error).__name__}})
    yield _sse("[DONE]")


class Collections:
    """An engine for each collection of the store, made when first asked for; one shared model.

    The default is the engine the app was built over; the others differ only in collection."""

    def __init__(self, engine: Engine) -> None:
        self.default = engine
        self._engines: dict[str, Engine] = {engine.settings.collection: engine}
        self._lock = threading.Lock()
        self.last_names: list[str] = [engine.settings.collection]  # as the store last said

    def names(self) -> list[str]:
        """The collections that hold articles, the default first (even while it is empty)."""
        default = self.default.settings.collection
        found = self.default.index.collections()
        self.last_names = [default, *(name for name in found if name != default)]
        return self.last_names

    def for_writing(self, name: str | None) -> Engine:
        """The engine over collection `name` (None: the default), made if the store lacks it."""
        with self._lock:
            known = self._engines.get(name or self.default.settings.collection)
            if known is not None:
                return known
            assert name is not None
            settings = self.default.settings.with_changes(collection=name)
            return self._engines.setdefault(name, Engine(settings, embedder=self.default.embedder))

    def engine(self, name: str | None = None) -> Engine:
        """The engine over collection `name` (None: the default); ValueError if it is not there."""
        with self._lock:
            known = self._engines.get(name or self.default.settings.collection)
        if known is not None:
            return known
        assert name is not None
        names = self.names()
        if name not in names:
            raise ValueError(f"{name!r} is not in the store; choose one of: {', '.join(names)}")
        settings = self.default.settings.with_changes(collection=name)
        with self._lock:
            return self._engines.setdefault(name, Engine(settings, embedder=self.default.embedder))


async def request_engine(request: Request) -> Engine:
    """The engine the router serving this request was built over (see `build_router`)."""
    engine: Engine = request.state.engine
    return engine


async def request_collections(request: Request) -> Collections:
    """The engines of the store's collections (see `build_router`)."""
    collections: Collections = request.state.collections
    return collections


EngineDep = Annotated[Engine, Depends(request_engine)]
CollectionsDep = Annotated[Collections, Depends(request_collections)]


def chosen_engine(collections: Collections, name: str | None) -> Engine:
    """The engine of the request's `collection`; an unknown one is a 422 like other bad fields."""
    try:
        return collections.engine(name)
    except ValueError as error:
        problem = {"type": "value_error", "loc": ("body", "collection"), "msg": str(error)}
        raise RequestValidationError([problem]) from None


# The handlers; `build_router` puts them behind the token check, over one engine.
_routes = APIRouter()


@_routes.post("/api/search", response_model=SearchResponse, tags=["api"])
def search(request: SearchRequest, collections: CollectionsDep) -> dict[str, Any]:
    """The passages that best match the question (dense + keyword, fused)."""
    started = time.perf_counter()
    engine = chosen_engine(collections, request.collection)
    passages = engine.search(request.question, k=request.k, filters=request.filters())
    return {
        "question": request.question,
        "passages": [passage_json(p) for p in passages],
        "timings": {"total": round(time.perf_counter() - started, 4)},
    }


@_routes.post("/api/ask", response_model=AskResponse, tags=["api"])
def ask(request: AskRequest, collections: CollectionsDep) -> dict[str, Any]:
    """An answer whose every [n] is a citation with the quoted span of its article."""
    engine = chosen_engine(collections, request.collection)
    answer = engine.ask(
        request.question,
        history=_history(request.history),
        filters=request.filters(),
        k=request.k,
        use_llm=request.use_llm,
    )
    return answer_json(answer)


# Health checks run on threads of their own, under a time bound: never queued behind searches
# that hold the shared pool, never hung on a stuck store.
HEALTH_SECONDS = 5.0
_health_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


def _health_report(collections: Collections) -> tuple[int, HealthResponse]:
    engine = collections.default
    mode = engine.mode
    try:
        engine.store.ping()  # a heartbeat, seconds at most; at once while the breaker is open
        summary = engine.corpus_summary()  # made again only when the corpus changed
        names = collections.names()
    except StoreUnavailableError as error:
        return 503, _unavailable(collections, mode, str(error))
    body = HealthResponse(
        status="ok",
        articles=summary.articles,
        chunks=summary.chunks,
        outlets=len(summary.outlets),
        mode=mode,
        collections=names,
        last_updated=_iso(engine.index.last_updated),
    )
    return 200, body


def _iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def _unavailable(collections: Collections, mode: str, message: str) -> HealthResponse:
    """Status "unavailable", with the corpus as it was when the store last answered."""
    known = collections.default.index.last_summary
    return HealthResponse(
        status="unavailable",
        articles=known.articles if known else 0,
        chunks=known.chunks if known else 0,
        outlets=len(known.outlets) if known else 0,
        mode=mode,
        message=message,
        collections=collections.last_names,
        last_updated=_iso(collections.default.index.last_updated),
    )


@_routes.get("/api/health", response_model=HealthResponse, tags=["api"])
async def health(collections: CollectionsDep) -> JSONResponse:
    """Whether the store answers, what it holds (the default archive; `collections` names all),
    and how answers are written; within seconds."""
    work = asyncio.get_running_loop().run_in_executor(_health_threads, _health_report, collections)
    try:
        status, body = await asyncio.wait_for(work, HEALTH_SECONDS)
    except TimeoutError:
        message = (
            f"Chroma did not answer within {HEALTH_SECONDS:g} s; check that it is running "
            "and not stuck"
        )
        status, body = 503, _unavailable(collections, collections.default.mode, message)
    return JSONResponse(body.model_dump(), status)


@_routes.get("/v1/models", tags=["openai"])
async def models() -> dict[str, Any]:
    """The one model this server offers, for OpenAI clients."""
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": MODEL_ID}],
    }


@_routes.post("/v1/chat/completions", tags=["openai"], response_model=None)
def chat_completions(
    request: ChatCompletionRequest, engine: EngineDep
) -> JSONResponse | StreamingResponse:
    """OpenAI-compatible chat; the citations come in an extra `citations` field."""
    try:
        question, history = _chat_question(request)
    except ValueError as error:
        return error_response(422, "invalid_request_error", str(error))
    ids = _ChatIds(f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), request.model or MODEL_ID)
    kwargs: dict[str, Any] = {
        "history": history,
        "filters": request.filters.filters() if request.filters else None,
        "k": request.k,
        "use_llm": request.use_llm,
    }
    if not request.stream:
        return JSONResponse(_chat_completion(ids, engine.ask(question, **kwargs)))
    events = _chat_events(ids, partial(engine.ask_stream, question, **kwargs))
    return StreamingResponse(events, media_type="text/event-stream")


def _engine_binder(engine: Engine, collections: Collections) -> Any:
    """A dependency that hands `engine` and `collections` to the handlers of this request."""

    async def bind(request: Request) -> None:
        request.state.engine = engine
        request.state.collections = collections

    return bind


def build_router(
    engine: Engine, settings: AppSettings, collections: Collections | None = None
) -> APIRouter:
    """/api/* and /v1/* routes over one engine (and the store's other collections), behind the
    optional bearer token."""
    binder = _engine_binder(engine, collections or Collections(engine))
    router = APIRouter(dependencies=[Depends(_token_check(settings)), Depends(binder)])
    router.include_router(_routes)
    return router


def _offline_docs(app: FastAPI) -> str:
    """A plain page listing the endpoints from the OpenAPI schema; no CDN, no scripts."""
    from html import escape

    schema = app.openapi()
    rows = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            rows.append(
                f"<tr><td><code>{escape(method.upper())} {escape(path)}</code></td>"
                f"<td>{escape(op.get('summary', ''))}</td>"
                f"<td>{escape(op.get('description', ''))}</td>"
                f"<td>{f'<a href=#{escape(ref)}>{escape(ref)}</a>' if ref else ''}</td></tr>"
            )
    models = [
        f"<h3 id={escape(name)}>{escape(name)}</h3><pre>{escape(json.dumps(model, indent=2))}</pre>"
        for name, model in schema.get("components", {}).get("schemas", {}).items()
    ]
    return (
        "<!doctype html><meta charset=utf-8><title>News Assistant API</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        "padding:0 1rem}td{border-top:1px solid #ddd;padding:.3rem .6rem;vertical-align:top}"
        "pre{background:#f6f6f6;padding:.6rem;overflow:auto}</style>"
        "<h1>News Assistant API</h1><p>Machine-readable schema: "
        "<a href=openapi.json>/openapi.json</a>. The web UI's own endpoints for "
        "<code>gradio_client</code> are listed under &ldquo;Use via API&rdquo; in the app's "
        "footer.</p><table><tr><th>Endpoint<th>Summary<th>Description<th>Body</tr>"
        + "".join(rows)
        + "</table><h2>Schemas</h2>"
        + "".join(models)
    )


# The app's own pages and scripts, open to all (no token): docs, the embed widget, Gradio's loader.
_pages = APIRouter(include_in_schema=False)


# async and from memory, like the metadata routes: a FileResponse, or a sync route, waits for a
# thread of the pool that searches share, and a stuck store could hold them all.


@_pages.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(_offline_docs(request.app))


@_pages.get("/widget.js")
async def widget() -> Response:
    return Response(_static(STATIC_DIR / "widget.js"), media_type="text/javascript")


@_pages.get("/embed-example.html")
async def embed_example() -> Response:
    return Response(_static(STATIC_DIR / "embed-example.html"), media_type="text/html")


@_pages.get("/gradio.js")
async def gradio_web_component() -> Response:
    import gradio

    # The package's loader for the <gradio-app> element; it imports ./assets/index-*.js,
    # which Gradio serves from /assets/ of this same app.
    path = Path(gradio.__file__).parent / "templates" / "frontend" / "gradio.js"
    return Response(_static(path), media_type="text/javascript")


@cache
def _static(path: Path) -> bytes:
    """A small file the app ships, read once."""
    return path.read_bytes()


def create_api(
    engine: Engine,
    settings: AppSettings | None = None,
    *,
    collections: Collections | None = None,
) -> FastAPI:
    """The FastAPI app with the JSON API, /widget.js, /gradio.js and offline /docs.

    `settings` (default: the engine's) gives the serving knobs: CORS, token, answer mode;
    `collections` the engines of other collections, shared with the page (default: made here)."""
    settings = settings or app_settings(engine.settings)
    app = FastAPI(
        title="News Assistant API",
        summary="Answers over a news archive, with citations you can check.",
        version="0.1.0",
        docs_url=None,  # FastAPI's Swagger UI comes from a CDN; /docs is served below instead
        redoc_url=None,
    )
    # Innermost (added first): CORS answers preflight OPTIONS before MethodRules would refuse
    # them, and a crash turns into a JSON 500 that the outer middlewares still see.
    app.add_middleware(CrashAsJson)
    app.add_middleware(MethodRules, routes=lambda: app.router.routes)
    # Gradio adds its own permissive CORS unless the parent app has a CORSMiddleware; with an
    # empty allow-list this one sends no CORS headers, so only same-origin pages get answers.
    # It answers the listed origins only (with credentials); OriginPolicy answers the rest.
    listed = [origin for origin in settings.cors_origins if origin != "*"]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=listed,
        allow_methods=list(CORS_METHODS),
        allow_headers=["*"],  # Gradio's client sends headers of its own (x-gradio-*)
        allow_credentials=True,
    )
    app.add_middleware(OriginPolicy, origins=list(settings.cors_origins))
    app.add_middleware(FramePolicy, origins=listed)
    larger = (INGEST_PATH, settings.ingest_token, settings.ingest_max_bytes)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, larger=larger)
    install_error_handlers(app)
    install_ingest_errors(app)
    collections = collections or Collections(engine)
    app.include_router(build_router(engine, settings, collections))
    app.include_router(ingest_router(settings, collections.for_writing))
    app.include_router(_pages)
    return app
