"""Opening Chroma: the client, an embedded folder's lock, a server's timeouts and heartbeat,
the circuit breaker, errors."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from index.config import IndexSettings
from index.errors import StoreUnavailableError

log = logging.getLogger(__name__)

LOCK_FILE = ".news-assistant.lock"

# chromadb's HTTP client waits for ever by default; a hung server must not hang the app, and a
# slow one must not be taken for a dead one. A read with no answer after the stall time has the
# server checked with a heartbeat on a new connection: no heartbeat, and the store is
# unavailable (seconds after the server hung); a heartbeat, and the read is sent again with the
# long timeout. Writes wait longer (a batch of thousands of chunks) and are not sent again.
_SERVER_CONNECT_SECONDS = 3.0
SERVER_STALL_SECONDS = 3.0
SERVER_PROBE_SECONDS = 2.0
SERVER_READ_SECONDS = 60.0
SERVER_WRITE_SECONDS = 120.0
# After the store failed, calls fail at once for this long instead of each waiting for a timeout.
BREAKER_SECONDS = 0.5

# The read timeout of the Chroma call this thread is making (None: the stall time).
read_timeout: ContextVar[float | None] = ContextVar("chroma_read_timeout", default=None)


class CircuitBreaker:
    """Fails calls at once while the store is failing; after `cooldown` s lets one probe through.

    Without it, each of many requests in flight would wait for a timeout of its own, and hold a
    server thread meanwhile. Only an unreachable store opens it, never an ordinary error."""

    def __init__(self, where: str, cooldown: float) -> None:
        self.where = where
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._reason = ""
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._failed_at is not None

    @property
    def reason(self) -> str:
        """Why it opened last: the error the store gave."""
        return self._reason

    def admit(self, probe: Callable[[], None]) -> bool:
        """Let a call go ahead, or raise StoreUnavailableError while the store fails.

        Once `cooldown` has passed, the one caller that gets here first runs `probe` (and True
        comes back): if it passes, normal service resumes; meanwhile the others fail at once."""
        with self._lock:
            if self._failed_at is None:
                return False
            if self._probing or time.monotonic() - self._failed_at < self.cooldown:
                raise StoreUnavailableError(self._reason)
            self._probing = True
        try:
            probe()
        except Exception as error:
            reason = error if isinstance(error, StoreUnavailableError) else self._reason
            self.trip(str(reason))
            raise StoreUnavailableError(str(reason)) from error
        finally:
            with self._lock:
                self._probing = False
        self.reset()
        return True

    def trip(self, reason: str) -> None:
        """The store did not answer: fail calls at once for the next `cooldown` seconds."""
        with self._lock:
            if self._failed_at is None:
                log.warning("%s; calls fail at once until it answers again", reason)
            self._failed_at = time.monotonic()
            self._reason = reason

    def reset(self) -> None:
        with self._lock:
            if self._failed_at is not None:
                log.warning("Chroma (%s) answers again", self.where)
            self._failed_at = None


def _server_url(settings: IndexSettings) -> str:
    from chromadb.api.fastapi import FastAPI as ChromaHttpApi

    return ChromaHttpApi.resolve_url(
        chroma_server_host=str(settings.chroma_host),
        chroma_server_http_port=settings.chroma_port,
        chroma_server_ssl_enabled=False,
        default_api_path="/api/v2",
    )


def heartbeat(settings: IndexSettings) -> str | None:
    """None if the server answers a heartbeat within a short time, else what went wrong.

    On a new connection: those of the client's pool may be stuck behind a hung request."""
    import httpx

    timeout = httpx.Timeout(SERVER_PROBE_SECONDS, connect=_SERVER_CONNECT_SECONDS)
    try:
        httpx.get(f"{_server_url(settings)}/heartbeat", timeout=timeout).raise_for_status()
    except httpx.HTTPError as error:
        return (
            f"no heartbeat within {SERVER_PROBE_SECONDS:g} s ({type(error).__name__}: "
            f"{error or 'timed out'}); check that the server is running and not stuck"
        )
    return None


def _bound_requests(session: Any) -> None:
    """Give each request of chromadb's HTTP session the timeout of the call making it."""
    import httpx

    if not isinstance(session, httpx.Client) or getattr(session, "_bounded_by_store", False):
        return  # clients of one server share a session: wrap it once
    send = session.request

    def request(method: str, url: Any, **kwargs: Any) -> httpx.Response:
        read = read_timeout.get() or SERVER_STALL_SECONDS
        kwargs["timeout"] = httpx.Timeout(read, connect=_SERVER_CONNECT_SECONDS)
        return send(method, url, **kwargs)

    session.__dict__["request"] = request
    session.__dict__["_bounded_by_store"] = True


def make_client(settings: IndexSettings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_host:
            # Making a client asks the server questions with no timeout at all: ask first.
            problem = heartbeat(settings)
            if problem:
                raise StoreUnavailableError(f"cannot open Chroma ({location(settings)}): {problem}")
            client = chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
            _bound_requests(getattr(getattr(client, "_server", None), "_session", None))
            return client
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except StoreUnavailableError:
        raise
    except Exception as error:
        raise StoreUnavailableError(
            f"cannot open Chroma ({location(settings)}): {error}"
        ) from error


def location(settings: IndexSettings) -> str:
    if settings.chroma_host:
        return f"server at {settings.chroma_host}:{settings.chroma_port}"
    return f"folder {settings.chroma_dir}"


def describe_error(error: BaseException) -> str:
    """An error in words; httpx's timeouts have none of their own."""
    return str(error) or f"{type(error).__name__} (timed out)"


def is_connection_error(error: Exception) -> bool:
    import httpx

    if isinstance(error, httpx.TransportError | ConnectionError | TimeoutError):
        return True
    text = f"{type(error).__name__} {error}".lower()
    return any(
        word in text
        for word in ("connect", "connection", "timeout", "unavailable", "refused", "could not")
    )


def is_missing_collection(error: Exception) -> bool:
    """A collection handle that outlived its collection (a server restarted on a new folder)."""
    from chromadb.errors import NotFoundError

    return isinstance(error, NotFoundError) or "does not exist" in str(error).lower()


class FolderLock:
    """An advisory lock on an embedded Chroma folder, shared by readers, exclusive for a writer.

    Embedded Chroma keeps its vector index in the memory of the process that opened it: a
    second process would read stale vectors, or fail, after the first one writes. The kernel
    drops the lock when its process dies, so a crash never leaves a stale lock behind."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self._file = (folder / LOCK_FILE).open("a+")
        except OSError as error:
            raise StoreUnavailableError(f"cannot open Chroma folder {folder}: {error}") from error
        self._mode = 0
        self._lock = threading.Lock()

    @classmethod
    def for_folder(cls, folder: Path) -> FolderLock:
        """One lock object per folder and process: stores of one process share it."""
        key = folder.resolve()
        with _FOLDER_LOCKS_GUARD:
            if key not in _FOLDER_LOCKS:
                _FOLDER_LOCKS[key] = cls(key)
            return _FOLDER_LOCKS[key]

    def shared(self) -> None:
        with self._lock:
            if self._mode:
                return
            try:
                fcntl.flock(self._file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreUnavailableError(
                    f"Chroma folder {self.folder} is being written by another process"
                    f"{self._owner()}; wait for it to finish, or share the data through a "
                    f"Chroma server (`chroma run --path {self.folder}`, then set chroma_host)"
                ) from None
            self._mode = fcntl.LOCK_SH

    def exclusive(self) -> None:
        with self._lock:
            if self._mode == fcntl.LOCK_EX:
                return
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # Linux drops the shared lock when an upgrade fails; take it back.
                self._mode = 0
                try:
                    fcntl.flock(self._file, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    self._mode = fcntl.LOCK_SH
                except BlockingIOError:
                    pass
                # Readers leave no pid behind; the file holds the last writer's.
                raise StoreUnavailableError(
                    f"cannot write Chroma folder {self.folder}: another process has it open "
                    "(the app, or another ingest); embedded Chroma serves one "
                    "process at a time while it is written. Stop the other process, or share the "
                    f"data through a Chroma server (`chroma run --path {self.folder}`, then set "
                    "chroma_host)"
                ) from None
            self._mode = fcntl.LOCK_EX
            self._file.seek(0)
            self._file.truncate()
            self._file.write(str(os.getpid()))
            self._file.flush()

    def _owner(self) -> str:
        try:
            pid = (self.folder / LOCK_FILE).read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() and int(pid) != os.getpid() else ""


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_FOLDER_LOCKS: dict[Path, FolderLock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()
