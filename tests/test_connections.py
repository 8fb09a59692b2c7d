"""Connection limits over real sockets: slow heads and bodies, idle and unread connections, the
cap on connections, and clients that behave, against servers started as `serve` starts them."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serving.config import AppSettings, app_settings
from serving.server import (
    GuardedH11Protocol,
    GuardedHttpToolsProtocol,
    configured_limits,
    server_config,
)
from tests.conftest import LiveServer, free_port, served_app

# Small limits, so that each test waits a second or two; the bounds below are generous instead,
# as this machine may be loaded: the server may close late, never early. The keep-alive timeout
# is above uvicorn's own (5 s), so that a close after it shows the setting at work.
HEAD, BODY, KEEP_ALIVE, SEND = 1.0, 1.5, 6.0, 1.5
LIMITS: dict[str, Any] = {
    "header_timeout": HEAD,
    "body_timeout": BODY,
    "keep_alive_timeout": KEEP_ALIVE,
    "send_timeout": SEND,
}
MARGIN = 15.0  # seconds past a deadline that still count as "closed by it"
EARLY = 0.9  # a close before this share of its deadline would be a bug, not load

PROTOCOLS = [pytest.param(GuardedH11Protocol, id="h11")]
if GuardedHttpToolsProtocol is not None:  # uvicorn's choice where httptools is installed
    PROTOCOLS.insert(0, pytest.param(GuardedHttpToolsProtocol, id="httptools"))


class GuardedServer(LiveServer):
    """uvicorn in a thread, configured as `serving.web.serve` configures it (`server_config`)."""

    def __init__(self, app: Any, settings: AppSettings, base: Any = None, **options: Any) -> None:
        import uvicorn

        super().__init__(app)
        config = server_config(app, settings, port=self.port, base=base, **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> GuardedServer:
        super().__enter__()
        return self

    def open_connections(self) -> int:
        return len(self.server.server_state.connections)

    def wait_for_connections(self, count: int) -> None:
        """Wait until the server holds `count` connections (it accepts them in its own time)."""
        deadline = time.monotonic() + 10
        while self.open_connections() != count:
            assert time.monotonic() < deadline, f"{self.open_connections()} open, not {count}"
            time.sleep(0.02)


@pytest.fixture(scope="module", params=PROTOCOLS)
def server(request: pytest.FixtureRequest, small_engine: Any) -> Iterator[GuardedServer]:
    """The real app (UI + API) with small connection limits, on each HTTP protocol."""
    from serving.web import create_app

    settings = app_settings(small_engine.settings).with_changes(**LIMITS)
    with GuardedServer(create_app(small_engine, settings), settings, request.param) as live:
        yield live


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=MARGIN)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """What the server sends until it closes `sock`, and how many seconds from now that took."""
    started = time.monotonic()
    received = b""
    sock.settimeout(limit)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"still open after {limit}s; got {received[:200]!r}")
    except ConnectionResetError:
        pass
    return received, time.monotonic() - started


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def test_silent_connection_is_closed_after_the_header_timeout(server: GuardedServer) -> None:
    with connect(server.port) as sock:
        received, took = read_until_closed(sock, HEAD + MARGIN)
    assert received == b""  # nothing was asked, so nothing is answered
    assert took >= HEAD * EARLY


def test_head_sent_a_byte_at_a_time_gets_408_at_the_header_timeout(
    server: GuardedServer,
) -> None:
    head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: drip\r\n" + b"X" * 200
    with connect(server.port) as sock:
        started = time.monotonic()
        sent = 0
        # One byte every 0.1 s until the server speaks or hangs up (the head is never finished).
        while sent < len(head) and time.monotonic() - started < HEAD + MARGIN:
            try:
                sock.send(head[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            if select.select([sock], [], [], 0.1)[0]:
                break
        received, _ = read_until_closed(sock, MARGIN)
        took = time.monotonic() - started
    assert status_of(received) == 408
    assert b"connection: close" in received.lower()
    assert HEAD * EARLY <= took <= HEAD + MARGIN
    assert sent < len(head)  # cut while still dripping, not after the bytes ran out


@pytest.mark.parametrize("pace", ["stalled", "dripped"])
def test_slow_body_gets_408_at_the_body_timeout(server: GuardedServer, pace: str) -> None:
    body = b'{"question": "What did Lavrov say about NATO?", "k": 3}' + b" " * 400
    head = (
        b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with connect(server.port) as sock:
        sock.sendall(head + body[:20])
        started = time.monotonic()
        if pace == "dripped":  # a byte every 0.1 s: it keeps arriving, but not in time
            for byte in body[20:200]:
                if select.select([sock], [], [], 0.1)[0]:
                    break
                try:
                    sock.send(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    break
        received, _ = read_until_closed(sock, BODY + MARGIN)
        took = time.monotonic() - started
    assert status_of(received) == 408
    assert BODY * EARLY <= took <= BODY + MARGIN
    # The app heard of the disconnect and let go: the connection is gone from the server.
    server.wait_for_connections(0)


def test_idle_keep_alive_connection_is_closed(server: GuardedServer) -> None:
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=MARGIN)
    try:
        client.request("GET", "/api/health")
        response = client.getresponse()
        assert response.status == 200 and response.read()
        assert response.getheader("connection") != "close"
        assert client.sock is not None
        received, took = read_until_closed(client.sock, KEEP_ALIVE + MARGIN)
    finally:
        client.close()
    assert received == b""
    assert took >= KEEP_ALIVE * EARLY


def test_well_behaved_client_is_unaffected(server: GuardedServer) -> None:
    """Requests on one connection, spread over longer than the head and body timeouts, all
    answered."""
    client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        client.request("GET", "/api/health")
        first = client.getresponse()
        assert first.status == 200 and first.read()
        sock = client.sock
        started = time.monotonic()
        answered = 1
        while time.monotonic() - started < max(HEAD, BODY) + 1:
            time.sleep(0.4)  # well inside the keep-alive timeout
            body = '{"question": "What did Lavrov say about NATO expansion?", "k": 2}'
            client.request(
                "POST", "/api/search", body, headers={"Content-Type": "application/json"}
            )
            response = client.getresponse()
            assert response.status == 200, response.read()
            assert len(json.loads(response.read())["passages"]) == 2
            answered += 1
        assert client.sock is sock  # the same connection all along
    finally:
        client.close()
    assert answered >= 3


def test_head_that_never_ends_is_refused(server: GuardedServer) -> None:
    """A fast client cannot grow a request head without bound while the header timeout runs."""
    with connect(server.port) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: ")
        sent = 0
        while sent < 4 * 1024 * 1024 and not select.select([sock], [], [], 0.01)[0]:
            try:
                sock.sendall(b"a" * 8192)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 8192
        received, _ = read_until_closed(sock, MARGIN)
    # httptools: this module's 431 past 64 KiB; h11: its own 400 past 16 KiB.
    assert status_of(received) in (400, 431)
    assert sent < 1024 * 1024


# Replies: a small app, served the same way, whose replies are slow or endless.


class ReplyApp:
    """/slow: answers after 2.5 s (longer than any timeout here); /endless: streams until the
    client goes, and notes that it stopped."""

    def __init__(self) -> None:
        self.stopped = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        start = {"type": "http.response.start", "status": 200, "headers": []}
        if scope["path"] == "/slow":
            await asyncio.sleep(2.5)
            await send(start)
            await send({"type": "http.response.body", "body": b"slow but sure"})
            return
        await send(start)
        try:
            for _ in range(4096):  # at most 256 MiB, if nothing stopped it
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        finally:
            self.stopped.set()


@pytest.fixture(scope="module", params=PROTOCOLS)
def reply_server(request: pytest.FixtureRequest) -> Iterator[tuple[GuardedServer, ReplyApp]]:
    app = ReplyApp()
    settings = AppSettings(**LIMITS)
    with GuardedServer(app, settings, request.param, lifespan="off") as live:
        yield live, app


def test_reply_left_unread_is_dropped(reply_server: tuple[GuardedServer, ReplyApp]) -> None:
    live, app = reply_server
    app.stopped.clear()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills quickly
        sock.connect(("127.0.0.1", live.port))
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        # Never read: the server's buffers fill, then the send timeout runs out.
        assert app.stopped.wait(SEND + MARGIN), "the endless reply is still being sent"
        live.wait_for_connections(0)
        received, _ = read_until_closed(sock, MARGIN)
    assert len(received) < 256 * 1024 * 1024  # cut, not finished


def test_slow_reply_is_not_cut(reply_server: tuple[GuardedServer, ReplyApp]) -> None:
    """The timeouts time the client, never the app: a 2.5 s answer arrives whole."""
    live, _ = reply_server
    response = httpx.get(f"{live.url}/slow", timeout=60)
    assert response.status_code == 200 and response.text == "slow but sure"


# The cap on connections.

CAP = 4


@pytest.fixture(scope="module")
def capped_server(small_engine: Any) -> Iterator[GuardedServer]:
    """The JSON API with room for CAP connections and a long header timeout (idle ones stay)."""
    from serving.api import create_api

    settings = app_settings(small_engine.settings).with_changes(
        max_connections=CAP, header_timeout=120.0
    )
    with GuardedServer(create_api(small_engine, settings), settings) as live:
        yield live


def test_connections_over_the_cap_get_503_until_others_go(capped_server: GuardedServer) -> None:
    url = f"{capped_server.url}/api/health"
    idle = [connect(capped_server.port) for _ in range(CAP - 1)]
    try:
        capped_server.wait_for_connections(CAP - 1)
        with httpx.Client(timeout=10) as client:  # the CAP-th connection: served
            assert client.get(url).status_code == 200
        idle.append(connect(capped_server.port))
        capped_server.wait_for_connections(CAP)
        started = time.monotonic()
        with httpx.Client(timeout=10) as client:  # one over: refused at once, and closed
            refused = client.get(url)
        assert refused.status_code == 503 and refused.headers["connection"] == "close"
        assert time.monotonic() - started < 10
    finally:
        for sock in idle:
            sock.close()
    capped_server.wait_for_connections(0)
    with httpx.Client(timeout=10) as client:
        for _ in range(CAP + 2):  # one at a time: never over the cap
            assert client.get(url).status_code == 200


# The two ways to start the app apply the settings: `python app.py` (= `news-assistant serve`)
# and `uvicorn --factory app:create` with this module's protocol.

COMMANDS = {
    "app.py": [sys.executable, "app.py", "--no-demo", "--quiet", "--port"],
    "uvicorn": [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app:create",
        "--http",
        "serving.server:GuardedHttpProtocol",
        "--port",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_started_apps_apply_the_settings(tmp_path: Any, command: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "NEWS_ASSISTANT_STORAGE_DIR": str(tmp_path / "storage"),
        "NEWS_ASSISTANT_CONFIG": os.devnull,
        "NEWS_ASSISTANT_DEMO_ON_EMPTY": "false",
        "NEWS_ASSISTANT_HEADER_TIMEOUT": str(HEAD),
        "NEWS_ASSISTANT_MAX_CONNECTIONS": "1",
    }
    url = f"http://127.0.0.1:{port}"
    with served_app([*COMMANDS[command], str(port)], env):
        with connect(port) as sock:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no end
            # max_connections = 1: a second client, while this one holds the only place, is
            # refused.
            assert httpx.get(f"{url}/api/health", timeout=10).status_code == 503
            received, took = read_until_closed(sock, HEAD + MARGIN)
        assert status_of(received) == 408
        assert took <= HEAD + MARGIN


def test_configured_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `uvicorn --http serving.server:GuardedHttpProtocol` uses: the environment's settings."""
    monkeypatch.setenv("NEWS_ASSISTANT_CONFIG", os.devnull)
    monkeypatch.setenv("NEWS_ASSISTANT_BODY_TIMEOUT", "7.5")
    monkeypatch.setenv("NEWS_ASSISTANT_MAX_CONNECTIONS", "12")
    configured_limits.cache_clear()
    try:
        limits = configured_limits()
    finally:
        configured_limits.cache_clear()
    assert limits.body_timeout == 7.5 and limits.max_connections == 12
    assert limits.header_timeout == AppSettings.model_fields["header_timeout"].default
