"""The API's JSON error shape, {"error": {"message", "type"}}, and the handlers that use it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from assistant.llm import LLMError
from index.errors import ConfigError, NewsAssistantError, StoreUnavailableError


def error_response(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    """Errors in the shape OpenAI clients read: {"error": {"message", "type"}}."""
    return JSONResponse({"error": {"message": message, "type": kind, **extra}}, status)


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = tuple(item.get("loc", ()))
        if item.get("type") == "json_invalid":
            at = f" at character {loc[-1]}" if len(loc) > 1 else ""
            why = (item.get("ctx") or {}).get("error", "")
            parts.append(f"the body is not valid JSON ({why}{at})" if why else "not valid JSON")
            continue
        if loc == ("body",):
            # Not an object: a list, a string, or JSON sent without Content-Type: application/json.
            parts.append("send the body as a JSON object, with Content-Type: application/json")
            continue
        where = ".".join(str(p) for p in loc if p != "body")
        msg = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or "invalid request"


_ERROR_TYPES = {
    400: "invalid_request_error",
    404: "not_found",
    405: "method_not_allowed",
    422: "invalid_request_error",
}


def _unreadable_body(error: HTTPException) -> str:
    """What was wrong with a body FastAPI could not parse (its own message says only that)."""
    cause = error.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not UTF-8 text; send JSON encoded as UTF-8"
    if isinstance(cause, RecursionError):
        return "the JSON body is nested too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "a number in the body has too many digits"
    return f"could not read the body as JSON: {error.detail}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request_error", _validation_message(error))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        # FastAPI's own errors (a body it cannot parse, ...) in the shape of all the others.
        status = error.status_code
        message = _unreadable_body(error) if error.__cause__ is not None else str(error.detail)
        response = error_response(status, _ERROR_TYPES.get(status, f"http_{status}"), message)
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(StoreUnavailableError)
    async def _store(request: Request, error: StoreUnavailableError) -> JSONResponse:
        return error_response(503, "store_unavailable", str(error))

    @app.exception_handler(LLMError)
    async def _llm(request: Request, error: LLMError) -> JSONResponse:
        return error_response(502, "llm_error", str(error))

    @app.exception_handler(ConfigError)
    async def _config(request: Request, error: ConfigError) -> JSONResponse:
        # Raised per request when it asks for what is not set up, e.g. use_llm without an LLM.
        return error_response(400, "config_error", str(error))

    @app.exception_handler(NewsAssistantError)
    async def _other(request: Request, error: NewsAssistantError) -> JSONResponse:
        return error_response(400, "news_assistant_error", str(error))

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, error: Unauthorized) -> JSONResponse:
        response = error_response(
            401, "unauthorized", "send the API token as 'Authorization: Bearer …'"
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        return response


class Unauthorized(Exception):
    pass
