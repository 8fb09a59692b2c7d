"""POST /api/ingest: the running app takes new articles, so keeping the archive current never
means stopping it (the CLI's `ingest` sends here when the app holds an embedded store).

Guarded by its own token (`ingest_token`; unset: 403, the endpoint is off), compared in constant
time. The ingest runs on a thread of its own, one at a time: a second request while one runs
gets 409 at once, with `Retry-After`, and searches and health checks never wait on it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from assistant.engine import Engine
from index.errors import LoadIssue
from index.pipeline import IngestReport
from serving.config import AppSettings
from serving.errors import error_response
from serving.middleware import bearer_matches
from serving.schemas import IngestRequest, IngestResponse

INGEST_PATH = "/api/ingest"
RETRY_AFTER_SECONDS = 5
_T = TypeVar("_T")


class IngestRefused(Exception):
    """An ingest request turned away before its body is read: status, error type, message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


class IngestGate:
    """One ingest at a time, each on the gate's own thread (not the pool searches share)."""

    def __init__(self) -> None:
        self._busy = threading.Lock()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    async def run(self, work: Callable[[], _T]) -> _T:
        """`work()` on the ingest thread; IngestRefused (409) when one is already running.

        The gate is released when the work ends, even if the client has gone meanwhile."""
        if not self._busy.acquire(blocking=False):
            raise IngestRefused(
                409,
                "ingest_busy",
                "another ingest is running in this app; try again when it has finished",
            )

        def guarded() -> _T:
            try:
                return work()
            finally:
                self._busy.release()

        try:
            future = asyncio.get_running_loop().run_in_executor(self._thread, guarded)
        except BaseException:
            self._busy.release()
            raise
        return await future


def _token_check(settings: AppSettings) -> Any:
    """A dependency that asks for `Authorization: Bearer <ingest_token>`; 403 when none is set.

    It runs before the body is validated: a caller without the token learns nothing more."""

    async def check(request: Request) -> None:
        token = settings.ingest_token
        if not token:
            raise IngestRefused(
                403,
                "ingest_disabled",
                "ingest over HTTP is off: set ingest_token (NEWS_ASSISTANT_INGEST_TOKEN) for "
                "the app and restart it",
            )
        if not bearer_matches(request.headers.get("authorization"), token):
            raise IngestRefused(
                401, "unauthorized", "send the ingest token as 'Authorization: Bearer …'"
            )

    return check


class _Sources:
    """Where the request's articles and files were written for the loaders, and what each
    written file stands for in the report: (the name given, the line its first line is)."""

    def __init__(self, folder: Path, request: IngestRequest) -> None:
        self.records: Path | None = None
        self.files: dict[Path, tuple[str, int]] = {}
        if request.articles:
            # One record a line, ASCII: any string of the request survives as it was.
            self.records = folder / "articles.jsonl"
            lines = (json.dumps(record) + "\n" for record in request.articles)
            self.records.write_text("".join(lines), encoding="ascii")
        for number, given in enumerate(request.files):
            try:
                data = base64.b64decode(given.content_base64, validate=True)
            except binascii.Error:
                loc = ("body", "files", number, "content_base64")
                problem = {"type": "value_error", "loc": loc, "msg": "not valid base64"}
                raise RequestValidationError([problem]) from None
            name = PurePosixPath(given.name.replace("\\", "/")).name
            place = folder / "files" / str(number)
            place.mkdir(parents=True)
            path = place / (name if name not in ("", ".", "..") else "file")
            path.write_bytes(data)
            self.files[path] = (given.name, given.first_line)

    def paths(self) -> list[Path]:
        return [*([self.records] if self.records else []), *self.files]

    def where(self, path: Path, line: int | None) -> tuple[str, int | None]:
        """A written file as the request named it (`articles` or a file's name, a URL as it
        is), and the line there."""
        if path == self.records:
            return "articles", line
        if path in self.files:
            name, first = self.files[path]
            return name, None if line is None else line + first - 1
        return str(path), line

    def _at(self, path: Path, line: int | None) -> str:
        source, line = self.where(path, line)
        if source == "articles" and line is not None:
            return f"articles[{line - 1}]"
        return source if line is None else f"{source}:{line}"

    def issue(self, issue: LoadIssue) -> dict[str, Any]:
        source, line = self.where(issue.path, issue.line)
        at = self._at(issue.path, issue.line)
        return {
            "location": f"{at}.{issue.field}" if issue.field else at,
            "source": source,
            "line": line,
            "article": line - 1 if source == "articles" and line is not None else None,
            "field": issue.field,
            "reason": issue.reason,
        }

    def note(self, note: str) -> str:
        for path in self.paths():
            pattern = re.escape(str(path)) + r"(?::(\d+))?"

            def named(found: re.Match[str], path: Path = path) -> str:
                line = found.group(1)
                return self._at(path, None if line is None else int(line))

            note = re.sub(pattern, named, note)
        return note


def report_json(report: IngestReport, sources: _Sources, collection: str) -> dict[str, Any]:
    """`report` as the endpoint answers it, locations in terms of the request."""
    out = report.as_dict()
    out["issues"] = [sources.issue(issue) for issue in report.issues]
    out["notes"] = [sources.note(note) for note in report.notes]
    out["collection"] = collection
    return out


def ingest_request(engine: Engine, request: IngestRequest) -> dict[str, Any]:
    """Ingest the request's articles, files and URLs into `engine`'s archive (blocking)."""
    with tempfile.TemporaryDirectory(prefix="news-assistant-ingest-") as folder:
        sources = _Sources(Path(folder), request)
        given: list[Path | str] = [*sources.paths(), *request.urls]
        try:
            report = engine.index.ingest(
                given, fmt=request.format, fields=request.fields or None, progress=False
            )
        except ValueError as error:  # an unknown field name in `fields`
            problem = {"type": "value_error", "loc": ("body", "fields"), "msg": str(error)}
            raise RequestValidationError([problem]) from None
        return report_json(report, sources, engine.settings.collection)


def ingest_router(settings: AppSettings, engine_for: Callable[[str | None], Engine]) -> APIRouter:
    """POST /api/ingest behind the ingest token; `engine_for(collection)` picks the archive."""
    gate = IngestGate()
    router = APIRouter(dependencies=[Depends(_token_check(settings))])

    @router.post(INGEST_PATH, response_model=IngestResponse, tags=["api"])
    async def ingest(request: IngestRequest) -> dict[str, Any]:
        """Add articles (the JSONL loader's fields) and feed or page URLs to the running app's
        archive; the ingest report, bad records located as `articles[i].field`. Needs
        `Authorization: Bearer <ingest_token>`; 409 while another ingest runs."""
        if not (request.articles or request.files or request.urls):
            message = "nothing to ingest: give articles, files or urls"
            problem = {"type": "value_error", "loc": ("body", "articles"), "msg": message}
            raise RequestValidationError([problem])
        engine = engine_for(request.collection)
        return await gate.run(lambda: ingest_request(engine, request))

    return router


def install_ingest_errors(app: FastAPI) -> None:
    @app.exception_handler(IngestRefused)
    async def _refused(request: Request, error: IngestRefused) -> JSONResponse:
        response = error_response(error.status, error.kind, error.message)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        if error.status == 409:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
