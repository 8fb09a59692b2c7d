"""Polite HTTP for ingesting from the web: a clear user agent, robots.txt, conditional GET,
at most two requests at a time per host, and bounded retries on 429 and 5xx."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.robotparser
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

PRODUCT = "NewsAssistant"
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
MAX_PER_HOST = 2
MAX_RETRIES = 3
# A server that asks for a longer pause than this is told "later", not waited on.
MAX_RETRY_AFTER_S = 60.0
MAX_BYTES = 20 * 1024 * 1024
MAX_REDIRECTS = 5
VALIDATORS_FILE = "web-validators.json"
_REDIRECTS = (301, 302, 303, 307, 308)


def user_agent() -> str:
    """`NewsAssistant/<version> (+offline archive tool)`: who is asking, in every request."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("news-assistant")
    except PackageNotFoundError:
        number = "dev"
    return f"{PRODUCT}/{number} (+offline archive tool)"


class FetchError(Exception):
    """A URL that could not be fetched; `reason` says why, for the ingest report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Fetched:
    """One answer: the page's bytes, or `not_modified` when it is as it was at the last fetch."""

    url: str  # the URL asked for
    final_url: str  # where it was found, after redirects
    status: int
    content: bytes = b""
    content_type: str = ""
    charset: str | None = None
    validators: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Fetcher:
    """Fetches only from the hosts it is given, politely; safe to share between threads.

    ETag and Last-Modified of what was read are remembered in `state_file` once `save()` is
    called, so the next run's requests are conditional and an unchanged URL costs nothing."""

    def __init__(
        self,
        allowed_hosts: set[str],
        *,
        state_file: Path | None = None,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.allowed_hosts = {host.lower() for host in allowed_hosts}
        self.state_file = state_file
        self.backoff_s = backoff_s
        self.agent = user_agent()
        self._client = httpx.Client(
            headers={"User-Agent": self.agent},
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            follow_redirects=False,  # each hop is checked against the allowed hosts and robots
            transport=transport,
            trust_env=False,  # a proxy from the environment is not a server the user named
        )
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | str] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._known = self._load_state()
        self._learnt: dict[str, dict[str, str]] = {}

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str) -> Fetched:
        """GET `url` (conditionally when it was read before); raises FetchError saying why not."""
        validators = self._known.get(url, {})
        headers = {}
        if "etag" in validators:
            headers["If-None-Match"] = validators["etag"]
        if "last_modified" in validators:
            headers["If-Modified-Since"] = validators["last_modified"]
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self._check_allowed(current)
            response = self._request(current, headers)
            if response.status_code in _REDIRECTS and "location" in response.headers:
                current = urljoin(current, response.headers["location"])
                headers = {}  # validators belong to the URL asked for, not to where it moved
                continue
            if response.status_code == 304:
                return Fetched(url, current, 304)
            if response.status_code != 200:
                phrase = response.reason_phrase or ""
                raise FetchError(f"HTTP {response.status_code} {phrase}".strip())
            found = {}
            if response.headers.get("etag"):
                found["etag"] = response.headers["etag"]
            if response.headers.get("last-modified"):
                found["last_modified"] = response.headers["last-modified"]
            return Fetched(
                url,
                current,
                200,
                response.content,
                response.headers.get("content-type", ""),
                response.charset_encoding,
                found,
            )
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def remember(self, fetched: Fetched) -> None:
        """Keep `fetched`'s validators for `save()`: call once what it held is safely read."""
        if fetched.validators:
            with self._lock:
                self._learnt[fetched.url] = fetched.validators

    def save(self) -> None:
        """Write the validators learnt in this run to the state file (when there is one)."""
        if self.state_file is None or not self._learnt:
            return
        with self._lock:
            state = {**self._load_state(), **self._learnt}
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.state_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.state_file)  # a crash leaves the old file, not half of one
            self._known.update(self._learnt)
            self._learnt.clear()

    def _load_state(self) -> dict[str, dict[str, str]]:
        if self.state_file is None or not self.state_file.exists():
            return {}
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a damaged file only costs full fetches
        return state if isinstance(state, dict) else {}

    def _check_allowed(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError("not an http or https URL")
        if parts.netloc.lower() not in self.allowed_hosts:
            raise FetchError(
                f"not fetched: {parts.netloc} is not a server named on the command line"
            )
        robots = self._robots_for(parts.scheme, parts.netloc.lower())
        if isinstance(robots, str):
            raise FetchError(robots)
        if not robots.can_fetch(PRODUCT, url):
            raise FetchError(f"not fetched: {parts.netloc}/robots.txt disallows it")

    def _robots_for(self, scheme: str, host: str) -> urllib.robotparser.RobotFileParser | str:
        """The host's rules, fetched once; a reason string when they could not be read."""
        key = f"{scheme}://{host}"
        with self._lock:
            lock = self._robots_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._robots:
                self._robots[key] = self._read_robots(key)
            return self._robots[key]

    def _read_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | str:
        parser = urllib.robotparser.RobotFileParser(f"{origin}/robots.txt")
        try:
            response = self._request(f"{origin}/robots.txt", {})
        except FetchError as error:
            return f"not fetched: {origin}/robots.txt could not be read ({error.reason})"
        if 400 <= response.status_code < 500:
            parser.parse([])  # no robots.txt: everything is allowed (RFC 9309)
        elif response.status_code == 200:
            parser.parse(response.text.splitlines())
        else:
            # RFC 9309: a server error on robots.txt means crawl nothing for now.
            return f"not fetched: {origin}/robots.txt answered HTTP {response.status_code}"
        return parser

    def _slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            return self._slots.setdefault(host, threading.BoundedSemaphore(MAX_PER_HOST))

    def _request(self, url: str, headers: dict[str, str]) -> _Answer:
        """One GET with retries on 429 (after its Retry-After), 5xx and network errors."""
        host = urlsplit(url).netloc.lower()
        for attempt in range(MAX_RETRIES + 1):
            last = attempt == MAX_RETRIES
            try:
                with self._slot(host):
                    response = self._send(url, headers)
            except httpx.HTTPError as error:
                if last:
                    raise FetchError(f"{type(error).__name__}: {error}") from None
                time.sleep(self.backoff_s * 2**attempt)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if last:
                    raise FetchError(
                        f"HTTP {response.status_code} {response.reason_phrase} "
                        f"after {MAX_RETRIES + 1} tries"
                    )
                wait = self.backoff_s * 2**attempt
                if response.status_code == 429:
                    asked = _retry_after(response.headers.get("retry-after"))
                    if asked is not None and asked > MAX_RETRY_AFTER_S:
                        raise FetchError(
                            f"HTTP 429: the server asks to wait {asked:.0f} s; try again later"
                        )
                    wait = asked if asked is not None else wait
                time.sleep(wait)
                continue
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send(self, url: str, headers: dict[str, str]) -> _Answer:
        with self._client.stream("GET", url, headers=headers) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BYTES:
                raise FetchError(f"larger than the {MAX_BYTES // 2**20} MB limit")
            body = bytearray()
            for piece in response.iter_bytes():
                body.extend(piece)
                if len(body) > MAX_BYTES:
                    raise FetchError(f"larger than the {MAX_BYTES // 2**20} MB limit")
            return _Answer(
                response.status_code,
                response.reason_phrase,
                response.headers,
                bytes(body),
                response.charset_encoding,
            )


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int
    reason_phrase: str
    headers: httpx.Headers
    content: bytes
    charset_encoding: str | None

    @property
    def text(self) -> str:
        return self.content.decode(self.charset_encoding or "utf-8", "replace")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None
