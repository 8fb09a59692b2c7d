"""The HTTP API: JSON ask and search, health, and an OpenAI-compatible chat endpoint."""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.answer import Answer, StreamEvent
from assistant.engine import Engine
from assistant.llm import LLMError
from assistant.retrieve import Filters
from index.errors import ConfigError, NewsAssistantError, StoreUnavailableError
from serving.config import AppSettings, app_settings
from serving.inputs import (
    MAX_K,
    MAX_QUESTION,
    MAX_TURN,
    MAX_TURNS,
    MIN_K,
    STATIC_DIR,
    parse_filters,
)

log = logging.getLogger(__name__)

MODEL_ID = "news-assistant"


class Turn(BaseModel):
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN)


class FilterFields(BaseModel):
    """Restrict the articles searched: an inclusive date range and outlet names."""

    model_config = ConfigDict(extra="forbid")

    date_from: date | None = Field(None, description="Only articles on or after (YYYY-MM-DD).")
    date_to: date | None = Field(None, description="Only articles on or before (YYYY-MM-DD).")
    outlets: list[str] = Field(default_factory=list, max_length=100)

    def filters(self) -> Filters | None:
        return parse_filters(self.date_from, self.date_to, self.outlets)


class SearchRequest(FilterFields):
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    k: int | None = Field(
        None, ge=MIN_K, le=MAX_K, description="How many passages (default: top_k)."
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is empty")
        return value


class AskRequest(SearchRequest):
    history: list[Turn] = Field(default_factory=list, max_length=MAX_TURNS)
    use_llm: bool | None = Field(None, description="Force (true) or skip (false) the LLM.")


class PassageOut(BaseModel):
    chunk_id: str
    article_id: str
    text: str
    title: str
    source: str
    published: str
    url: str
    author: str
    start: int
    end: int
    score: float
    signals: dict[str, float]


class CitationOut(BaseModel):
    number: int
    article_id: str
    chunk_id: str
    title: str
    source: str
    published: str
    url: str
    author: str
    quote: str
    quote_start: int
    quote_end: int
    passage: str
    passage_start: int
    passage_end: int
    passage_spans: list[list[int]] = Field(
        description="The article ranges the passage is made of, joined by a blank line."
    )
    quote_offset: int = Field(description="Where the quote starts in `passage`.")


class AskResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    question: str
    standalone_question: str
    answer: str
    refused: bool
    mode: str
    citations: list[CitationOut]
    passages: list[PassageOut]
    timings: dict[str, float]
    evidence_score: float = 0.0
    notes: list[str] = Field(default_factory=list)


class SearchResponse(BaseModel):
    question: str
    passages: list[PassageOut]
    timings: dict[str, float]


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    articles: int
    chunks: int
    outlets: int
    mode: str
    message: str = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat request; sampling fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_TURNS + 1)
    stream: bool = False
    k: int | None = Field(None, ge=MIN_K, le=MAX_K)
    filters: FilterFields | None = None
    use_llm: bool | None = None


def _error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    """Errors in the shape OpenAI clients read: {"error": {"message", "type"}}."""
    return JSONResponse({"error": {"message": message, "type": kind, **extra}}, status)


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
        parts.append(f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg")))
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request_error", _validation_message(error))

    @app.exception_handler(StoreUnavailableError)
    async def _store(request: Request, error: StoreUnavailableError) -> JSONResponse:
        return _error(503, "store_unavailable", str(error))

    @app.exception_handler(LLMError)
    async def _llm(request: Request, error: LLMError) -> JSONResponse:
        return _error(502, "llm_error", str(error))

    @app.exception_handler(ConfigError)
    async def _config(request: Request, error: ConfigError) -> JSONResponse:
        # Raised per request when it asks for what is not set up, e.g. use_llm without an LLM.
        return _error(400, "config_error", str(error))

    @app.exception_handler(NewsAssistantError)
    async def _other(request: Request, error: NewsAssistantError) -> JSONResponse:
        return _error(400, "news_assistant_error", str(error))

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(request: Request, error: _Unauthorized) -> JSONResponse:
        response = _error(401, "unauthorized", "send the API token as 'Authorization: Bearer …'")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response


class _Unauthorized(Exception):
    pass


def _token_check(settings: AppSettings) -> Any:
    """A dependency that asks for `Authorization: Bearer <api_token>` when one is configured."""

    def check(request: Request) -> None:
        if not settings.api_token:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            given.strip().encode(), settings.api_token.encode()
        ):
            raise _Unauthorized

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
        "citations": [c.as_dict() for c in answer.citations],
        "refused": answer.refused,
        "mode": answer.mode,
    }


def _chat_events(ids: _ChatIds, stream: Callable[[], Iterator[StreamEvent]]) -> Iterator[str]:
    """The answer as OpenAI's server-sent chunks; the last one carries the citations."""
    yield _sse(ids.chunk({"role": "assistant"}, None))
    try:
        for event in stream():
            if event.kind == "delta" and event.text:
                yield _sse(ids.chunk({"content": event.text}, None))
            elif event.kind == "answer" and event.answer is not None:
                final = ids.chunk({}, "stop")
                final["citations"] = [c.as_dict() for c in event.answer.citations]
                final["refused"] = event.answer.refused
                final["mode"] = event.answer.mode
                yield _sse(final)
    except NewsAssistantError as error:
        # Headers are gone; tell the client in the stream, as OpenAI servers do.
        yield _sse({"error": {"message": str(error), "type": type(error).__name__}})
    yield _sse("[DONE]")


def request_engine(request: Request) -> Engine:
    """The engine the router serving this request was built over (see `build_router`)."""
    engine: Engine = request.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(request_engine)]

# The handlers; `build_router` puts them behind the token check, over one engine.
_routes = APIRouter()


@_routes.post("/api/search", response_model=SearchResponse, tags=["api"])
def search(request: SearchRequest, engine: EngineDep) -> dict[str, Any]:
    """The passages that best match the question (dense + keyword, fused)."""
    started = time.perf_counter()
    passages = engine.search(request.question, k=request.k, filters=request.filters())
    return {
        "question": request.question,
        "passages": [p.as_dict() for p in passages],
        "timings": {"total": round(time.perf_counter() - started, 4)},
    }


@_routes.post("/api/ask", response_model=AskResponse, tags=["api"])
def ask(request: AskRequest, engine: EngineDep) -> dict[str, Any]:
    """An answer whose every [n] is a citation with the quoted span of its article."""
    answer = engine.ask(
        request.question,
        history=_history(request.history),
        filters=request.filters(),
        k=request.k,
        use_llm=request.use_llm,
    )
    return answer.as_dict()


@_routes.get("/api/health", response_model=HealthResponse, tags=["api"])
def health(engine: EngineDep) -> JSONResponse:
    """Whether the store answers, what it holds, and how answers are written."""
    mode = engine.mode
    try:
        summary = engine.corpus_summary()
    except StoreUnavailableError as error:
        body = HealthResponse(
            status="unavailable", articles=0, chunks=0, outlets=0, mode=mode, message=str(error)
        )
        return JSONResponse(body.model_dump(), 503)
    body = HealthResponse(
        status="ok",
        articles=summary.articles,
        chunks=summary.chunks,
        outlets=len(summary.outlets),
        mode=mode,
    )
    return JSONResponse(body.model_dump())


@_routes.get("/v1/models", tags=["openai"])
def models() -> dict[str, Any]:
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
        return _error(422, "invalid_request_error", str(error))
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


def _engine_binder(engine: Engine) -> Any:
    """A dependency that hands `engine` to the handlers of this request (`request_engine`)."""

    def bind(request: Request) -> None:
        request.state.engine = engine

    return bind


def build_router(engine: Engine, settings: AppSettings) -> APIRouter:
    """/api/* and /v1/* routes over one engine, behind the optional bearer token."""
    router = APIRouter(
        dependencies=[Depends(_token_check(settings)), Depends(_engine_binder(engine))]
    )
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


class FramePolicy:
    """Pages may be framed only by this app and the allowed origins (CSP frame-ancestors)."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.policy = "frame-ancestors " + " ".join(["'self'", *origins])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("Content-Security-Policy", self.policy)
            await send(message)

        await self.app(scope, receive, send_with_policy)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if int(declared or b"0") > self.limit:
            await self._refuse(send)
            return
        # Read the whole body first (it is small, or refused), then hand it on.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = _error(413, "request_too_large", f"request body over {self.limit} bytes")
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


# The app's own pages and scripts, open to all (no token): docs, the embed widget, Gradio's loader.
_pages = APIRouter(include_in_schema=False)


@_pages.get("/docs")
def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(_offline_docs(request.app))


@_pages.get("/widget.js")
def widget() -> FileResponse:
    return FileResponse(STATIC_DIR / "widget.js", media_type="text/javascript")


@_pages.get("/embed-example.html")
def embed_example() -> FileResponse:
    return FileResponse(STATIC_DIR / "embed-example.html", media_type="text/html")


@_pages.get("/gradio.js")
def gradio_web_component() -> FileResponse:
    import gradio

    # The package's loader for the <gradio-app> element; it imports ./assets/index-*.js,
    # which Gradio serves from /assets/ of this same app.
    path = Path(gradio.__file__).parent / "templates" / "frontend" / "gradio.js"
    return FileResponse(path, media_type="text/javascript")


def create_api(engine: Engine, settings: AppSettings | None = None) -> FastAPI:
    """The FastAPI app with the JSON API, /widget.js, /gradio.js and offline /docs.

    `settings` (default: the engine's) gives the serving knobs: CORS, token, answer mode."""
    settings = settings or app_settings(engine.settings)
    app = FastAPI(
        title="News Assistant API",
        summary="Answers over a news archive, with citations you can check.",
        version="0.1.0",
        docs_url=None,  # FastAPI's Swagger UI comes from a CDN; /docs is served below instead
        redoc_url=None,
    )
    # Gradio adds its own permissive CORS unless the parent app has a CORSMiddleware; with an
    # empty allow-list this one sends no CORS headers, so only same-origin pages get answers.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],  # Gradio's client sends headers of its own (x-gradio-*)
        allow_credentials=True,
    )
    app.add_middleware(FramePolicy, origins=list(settings.cors_origins))
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    _install_error_handlers(app)
    app.include_router(build_router(engine, settings))
    app.include_router(_pages)
    return app
