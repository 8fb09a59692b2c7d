"""The app's ASGI middlewares: method rules, crash as JSON, CORS, framing, body size, login."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import error_response

if TYPE_CHECKING:
    from gradio.routes import App as GradioApp

log = logging.getLogger(__name__)


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an `Authorization` header value is `Bearer <token>` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        given.strip().encode(), token.encode()
    )


class FramePolicy:
    """Pages may be framed only by this app and the listed origins (CSP frame-ancestors)."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        # "*" never reaches framing: a logged-in page framed by any site could be clickjacked.
        listed = [origin for origin in origins if origin != "*"]
        self.policy = "frame-ancestors " + " ".join(["'self'", *listed])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).setdefault("Content-Security-Policy", self.policy)
            await send(message)

        await self.app(scope, receive, send_with_policy)


CORS_METHODS = ("GET", "POST", "OPTIONS")


class OriginPolicy:
    """CORS for origins that are not listed: never credentials; with "*" in the list,
    `Access-Control-Allow-Origin: *` (never an echo of the origin, so never of `null`).

    Listed origins pass through to the `CORSMiddleware` inside, which allows them credentials."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.listed = frozenset(origin for origin in origins if origin != "*")
        self.anyone = "*" in origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or origin in self.listed:
            await self.app(scope, receive, send)
            return
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if self.anyone and preflight:
            await self._preflight(headers)(scope, receive, send)
            return

        async def send_without_credentials(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                # Starlette's CORSMiddleware sends Allow-Credentials whatever the origin.
                del out["access-control-allow-credentials"]
                del out["access-control-allow-origin"]
                if self.anyone:
                    out["Access-Control-Allow-Origin"] = "*"
            await send(message)

        await self.app(scope, receive, send_without_credentials)

    def _preflight(self, headers: Headers) -> PlainTextResponse:
        allowed = {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": ", ".join(CORS_METHODS),
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
        if requested := headers.get("access-control-request-headers"):
            allowed["Access-Control-Allow-Headers"] = requested
        if headers["access-control-request-method"] not in CORS_METHODS:
            return PlainTextResponse("Disallowed CORS method", 400, headers=allowed)
        return PlainTextResponse("OK", 200, headers=allowed)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, before anything parses them.

    `larger`: (path, token, limit): a request to that path whose `Authorization` is
    `Bearer <token>` may send up to that limit instead (the ingest endpoint's articles); a
    request without the token gets the usual limit, so only its holder can send more."""

    def __init__(
        self, app: ASGIApp, limit: int, larger: tuple[str, str | None, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.larger = larger

    def _limit_for(self, scope: Scope) -> int:
        if self.larger is None:
            return self.limit
        path, token, limit = self.larger
        if not token or scope["path"] != path:
            return self.limit
        authorization = Headers(scope=scope).get("authorization")
        return max(limit, self.limit) if bearer_matches(authorization, token) else self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if int(declared or b"0") > limit:
            await self._refuse(send, limit)
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
            if received > limit:
                await self._refuse(send, limit)
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

    async def _refuse(self, send: Send, limit: int) -> None:
        response = error_response(413, "request_too_large", f"request body over {limit} bytes")
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class CrashAsJson:
    """A bug in a handler: its traceback in the log, a 500 in the error shape to the client.

    Starlette's own handler re-raises, and uvicorn then drops the connection under a client
    that would reuse it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if scope["type"] != "http" or started:
                raise
            log.exception("%s %s failed", scope["method"], scope["path"])
            response = error_response(
                500, "internal_error", "the server failed; its log has the details"
            )
            await response(scope, receive, send)


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _headers_only(receive: Receive, send: Send) -> tuple[Receive, Send]:
    """For a HEAD answered as a GET: the response's start as it is, no body; once it is sent,
    the app hears that the client left, so a stream stops."""
    done = False

    async def send_head(message: Message) -> None:
        nonlocal done
        if done:
            return
        if message["type"] == "http.response.body":
            done = True
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    async def receive_head() -> Message:
        return {"type": "http.disconnect"} if done else await receive()

    return receive_head, send_head


class MethodRules:
    """HEAD wherever GET is served (GET's status and headers, no body); 405 with `Allow` for a
    path asked with a method it does not take; 404 in the error shape under /api/ and /v1/.

    The UI is mounted at "/", so without this a wrong method or an unknown API path falls
    through to Gradio's 404, and FastAPI's routes do not answer HEAD at all."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}
            receive, send = _headers_only(receive, send)
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        await (refusal or self.app)(scope, receive, send)

    def _matches(self, scope: Scope, method: str) -> set[Match]:
        probe = {**scope, "method": method}
        # Not the mounted UI, which takes every path.
        return {r.matches(probe)[0] for r in self.routes() if not isinstance(r, Mount)}

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        found = self._matches(scope, scope["method"])
        if Match.FULL in found:
            return None
        # PARTIAL: the path is served, with other methods; ask which (rare, so not cached).
        partial = Match.PARTIAL in found
        allowed = {m for m in _METHODS if partial and Match.FULL in self._matches(scope, m)}
        if allowed:
            allowed |= {"HEAD"} if "GET" in allowed else set()
            methods = ", ".join(sorted(allowed))
            response = error_response(
                405, "method_not_allowed", f"{scope['method']} is not allowed here; use {methods}"
            )
            response.headers["Allow"] = methods
            return response
        path: str = scope["path"]
        if path.startswith(("/api/", "/v1/")):
            return error_response(404, "not_found", f"no endpoint {path[:200]}; /docs lists them")
        return None


# What a client may reach under /gradio_api/ before it logs in: the login flow, the login page's
# theme. Everything else there runs an event, reports on the queue or serves a file.
_LOGIN_FLOW = frozenset({"/gradio_api/login_check", "/gradio_api/user", "/gradio_api/theme.css"})
TOKEN_SESSION_USER = "api-token"


def _route_path(scope: Scope) -> str:
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root + "/") else path


class GradioGuard:
    """Gradio's own API (/gradio_api/*: events, queue, heartbeat, files, info) answers only a
    logged-in UI session or, when `api_token` is set, `Authorization: Bearer <api_token>`.

    Gradio checks its login on some of these routes but not all (heartbeat, cancel, streams)."""

    def __init__(self, app: ASGIApp, gradio_app: GradioApp, api_token: str | None) -> None:
        self.app = app
        self.gradio = gradio_app
        self.api_token = api_token
        self.token_session = secrets.token_urlsafe(32)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.api_token and bearer_matches(headers.get("authorization"), self.api_token):
            if self.gradio.auth is not None and not self._logged_in(headers):
                scope = self._as_token_session(scope, headers)
            await self.app(scope, receive, send)
            return
        path = _route_path(scope).rstrip("/")
        guarded = path == "/gradio_api" or path.startswith("/gradio_api/")
        if guarded and path not in _LOGIN_FLOW and not self._logged_in(headers):
            await self._refusal()(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _session_cookies(self) -> tuple[str, str]:
        # The two cookies Gradio's /login sets (routes.py, `login`); either carries the session.
        return f"access-token-{self.gradio.cookie_id}", (
            f"access-token-unsecure-{self.gradio.cookie_id}"
        )

    def _logged_in(self, headers: Headers) -> bool:
        cookies = cookie_parser(headers.get("cookie", ""))
        return any(cookies.get(name) in self.gradio.tokens for name in self._session_cookies())

    def _as_token_session(self, scope: Scope, headers: Headers) -> Scope:
        """The request as one from a session of the token's own, so Gradio's login checks pass."""
        # Registered on every use: Gradio's /logout drops a user's sessions from this table.
        self.gradio.tokens[self.token_session] = TOKEN_SESSION_USER
        session = f"{self._session_cookies()[0]}={self.token_session}"
        cookie = f"{headers['cookie']}; {session}" if "cookie" in headers else session
        rest = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
        return {**scope, "headers": [*rest, (b"cookie", cookie.encode("latin-1"))]}

    def _refusal(self) -> JSONResponse:
        how = "log in on the web page"
        if self.api_token:
            how += ", or send the API token as 'Authorization: Bearer <api_token>'"
        response = JSONResponse({"detail": f"Not authenticated: {how}"}, 401)
        if self.api_token:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response
