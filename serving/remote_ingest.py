"""`news-assistant ingest` through a running app: while the app holds an embedded store, the
command sends the files to the app's POST /api/ingest instead of writing the store itself.

The app records its address in the storage folder while it serves an embedded store
(`record_app`); `ingest_target` finds it there, or takes `--app-url` / `app_url`. The files
are read here and sent as they are (the app runs the same loaders, so bad records are reported
by this machine's file names and lines), in requests under `ingest_max_bytes`; a JSONL file over
that is sent in parts of whole lines."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from index.chroma_client import process_alive
from index.errors import LoadIssue, LoadNote, NewsAssistantError
from index.loaders import _files as files_under  # the folder walk `ingest` itself does
from index.pipeline import IngestReport
from index.web_pages import WebAddress, is_url
from serving.config import AppSettings
from serving.ingest_api import INGEST_PATH

log = logging.getLogger(__name__)

APP_FILE = ".news-assistant-app.json"
BUSY_WAIT_SECONDS = 600.0  # how long to wait for another ingest in the app to finish
INGEST_TIMEOUT_SECONDS = 3600.0  # one request's ingest: embedding can take a while
_OVERHEAD = 4096  # bytes of a request besides its files' contents
_COUNTS = ("added", "updated", "repaired", "unchanged", "duplicates", "syndicated")


class RemoteIngestError(NewsAssistantError):
    """The running app could not be asked, or refused the ingest."""


# The app's record in the storage folder


def _reachable_host(host: str) -> str:
    """The address a client on this machine uses for a server listening on `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def record_app(settings: AppSettings, *, host: str, port: int) -> Callable[[], None]:
    """Name this app (address, pid) in its embedded store's storage folder, so that `ingest`
    elsewhere on the machine sends its articles here; returns what removes the record."""
    if settings.chroma_host:  # a Chroma server takes writes from anyone: nothing to forward
        return lambda: None
    path = settings.storage_dir / APP_FILE
    record = {"url": f"http://{_reachable_host(host)}:{port}", "pid": os.getpid()}
    try:
        settings.storage_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record), encoding="utf-8")
    except OSError as error:
        log.warning("cannot record the app in %s: %s", path, error)
        return lambda: None

    def forget() -> None:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()

    return forget


def running_app(settings: AppSettings) -> str | None:
    """The address of the app serving this embedded store, if one is running."""
    try:
        record = json.loads((settings.storage_dir / APP_FILE).read_text(encoding="utf-8"))
        url, pid = str(record["url"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if pid != os.getpid() and process_alive(pid) else None


def ingest_target(settings: AppSettings, app_url: str | None) -> str | None:
    """Where `ingest` sends its articles: --app-url, app_url, or the app that holds the
    embedded store; None: write the store here."""
    if app_url or settings.app_url:
        return (app_url or settings.app_url or "").rstrip("/")
    if settings.chroma_host:
        return None
    return running_app(settings)


# Reading the files into parts that fit a request


@dataclass(frozen=True)
class _Part:
    """A file, or a run of whole lines of a big JSONL file, as one entry of `files`."""

    name: str
    data: bytes
    first_line: int

    @property
    def size(self) -> int:
        return (len(self.data) + 2) // 3 * 4 + len(self.name) + 100

    def json(self) -> dict[str, Any]:
        encoded = base64.b64encode(self.data).decode("ascii")
        return {"name": self.name, "content_base64": encoded, "first_line": self.first_line}


def _line_runs(path: Path, data: bytes, budget: int) -> Iterator[_Part]:
    """A JSONL file in parts of whole lines, each under `budget` (a longer line alone)."""
    start, line = 0, 1
    limit = budget * 3 // 4 - len(str(path)) - 100
    while start < len(data):
        end = data.rfind(b"\n", start, start + limit) + 1
        if end <= start:  # one line longer than the budget: sent alone, refused by size
            end = data.find(b"\n", start) + 1 or len(data)
        yield _Part(str(path), data[start:end], line)
        line += data.count(b"\n", start, end)
        start = end


def file_parts(
    paths: Sequence[str], fmt: str | None, budget: int, report: IngestReport
) -> list[_Part]:
    """The files under `paths` (not URLs) as parts under `budget`; what cannot be read, or
    sent, goes into `report` as `ingest` itself would say it."""
    parts: list[_Part] = []
    for given in paths:
        for item in files_under(Path(given), fmt):
            if isinstance(item, LoadIssue):
                report.issues.append(item)
                continue
            if isinstance(item, LoadNote):
                report.notes.append(str(item))
                continue
            path, file_fmt = item
            try:
                data = path.read_bytes()
            except OSError as error:
                report.issues.append(LoadIssue(path, None, None, f"cannot read: {error}"))
                continue
            whole = _Part(str(path), data, 1)
            if whole.size <= budget:
                parts.append(whole)
            elif file_fmt == "jsonl":
                parts.extend(_line_runs(path, data, budget))
            else:
                parts.append(whole)  # refused by size when sent, and reported
    return parts


def _batches(parts: list[_Part], budget: int) -> Iterator[list[_Part]]:
    batch: list[_Part] = []
    size = 0
    for part in parts:
        if batch and size + part.size > budget:
            yield batch
            batch, size = [], 0
        batch.append(part)
        size += part.size
    if batch:
        yield batch


# Sending


@dataclass
class AppClient:
    """POSTs to one app's /api/ingest with the ingest token."""

    url: str
    token: str | None
    collection: str
    fmt: str | None = None
    fields: dict[str, str] | None = None

    def post(self, client: httpx.Client, body: dict[str, Any]) -> dict[str, Any] | None:
        """The report of one request; None when the app found it too large (413)."""
        body = {**body, "collection": self.collection, "format": self.fmt}
        body["fields"] = self.fields or {}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while True:
            try:
                response = client.post(self.url + INGEST_PATH, json=body, headers=headers)
            except httpx.HTTPError as error:
                raise RemoteIngestError(
                    f"cannot send the articles to the app at {self.url}: {error}"
                ) from error
            if response.status_code == 409 and time.monotonic() < deadline:
                time.sleep(float(response.headers.get("retry-after", "5")))
                continue  # another ingest is running there: wait for it
            if response.status_code == 413:
                return None
            if response.status_code != 200:
                raise RemoteIngestError(self._refusal(response))
            answer: dict[str, Any] = response.json()
            return answer

    def _refusal(self, response: httpx.Response) -> str:
        try:
            message = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        hint = ""
        if response.status_code in (401, 403):
            hint = (
                "; give the app's ingest_token (NEWS_ASSISTANT_INGEST_TOKEN, or --token)"
                if self.token
                else "; no ingest token was given: set ingest_token (NEWS_ASSISTANT_INGEST_TOKEN) "
                "for the app and for this command, or pass --token"
            )
        return f"the app at {self.url} refused the ingest ({response.status_code}): {message}{hint}"


def _merge(report: IngestReport, answer: dict[str, Any]) -> None:
    for name in _COUNTS:
        setattr(report, name, getattr(report, name) + int(answer.get(name, 0)))
    report.chunks_written += int(answer.get("chunks_written", 0))
    for issue in answer.get("issues", []):
        source = str(issue["source"])
        path = WebAddress(source) if is_url(source) else Path(source)
        report.issues.append(
            LoadIssue(path, issue.get("line"), issue.get("field"), issue["reason"])
        )
    report.notes.extend(str(note) for note in answer.get("notes", []))


def _send(client: httpx.Client, app: AppClient, batch: list[_Part], report: IngestReport) -> None:
    """One batch; split in two while the app finds it too large, a lone part then reported."""
    answer = app.post(client, {"files": [part.json() for part in batch]})
    if answer is not None:
        _merge(report, answer)
    elif len(batch) > 1:
        middle = len(batch) // 2
        _send(client, app, batch[:middle], report)
        _send(client, app, batch[middle:], report)
    else:
        part = batch[0]
        report.issues.append(
            LoadIssue(
                Path(part.name),
                part.first_line if part.first_line > 1 else None,
                None,
                f"too large to send to the app ({len(part.data)} bytes): raise ingest_max_bytes "
                "for the app, or stop it and ingest directly",
            )
        )


def send_to_app(
    app: AppClient, paths: Sequence[str], budget: int, *, say: Any = None
) -> IngestReport:
    """Ingest `paths` (files, folders, URLs) through the app; one report as `ingest` prints."""
    started = time.perf_counter()
    report = IngestReport()
    urls = [item for item in paths if is_url(item)]
    room = budget - _OVERHEAD
    parts = file_parts([item for item in paths if not is_url(item)], app.fmt, room, report)
    if say is not None:
        size = sum(len(part.data) for part in parts)
        say(f"the app at {app.url} holds the store: sending {len(parts)} file(s), {size} bytes")
    with httpx.Client(timeout=httpx.Timeout(INGEST_TIMEOUT_SECONDS, connect=10.0)) as client:
        for start in range(0, len(urls), 100):
            answer = app.post(client, {"urls": urls[start : start + 100]})
            if answer is not None:
                _merge(report, answer)
        for batch in _batches(parts, room):
            _send(client, app, batch, report)
    report.seconds = time.perf_counter() - started
    return report
