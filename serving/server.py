"""Running the app under uvicorn with deadlines on every connection: a request head, a request
body and an unread reply each get a time limit, idle keep-alive connections are closed, and
connections beyond a cap get 503.

uvicorn (0.54) closes idle keep-alive connections and can answer 503 above a number of
connections, but it waits for ever on a client that sends its request a byte at a time, or never
reads the reply. `GuardedHttpProtocol` adds those deadlines to uvicorn's own HTTP protocol;
`run_app` serves an app with it (`serving.web.serve` does), and `uvicorn --factory app:create --http
serving.server:GuardedHttpProtocol` gets the same from the settings of the environment."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from serving.config import AppSettings, app_settings

if TYPE_CHECKING:
    import uvicorn
    from uvicorn.protocols.http.flow_control import FlowControl
    from uvicorn.server import ServerState

    from assistant.config import Settings

log = logging.getLogger(__name__)

# A head still incomplete after this many bytes gets 431 (httptools; h11 refuses one over 16 KiB
# itself): httptools has no limit, and a fast client could fill memory for the whole header
# timeout. A longer head that arrives whole in one read passes, as it cost one read's memory.
MAX_HEAD_BYTES = 65536


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take over each part of an exchange, and how many may be connected."""

    header_timeout: float
    body_timeout: float
    send_timeout: float
    keep_alive_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The limits `settings` configure."""
        app = app_settings(settings)
        return cls(
            header_timeout=app.header_timeout,
            body_timeout=app.body_timeout,
            send_timeout=app.send_timeout,
            keep_alive_timeout=app.keep_alive_timeout,
            max_connections=app.max_connections,
        )


@functools.cache
def configured_limits() -> ConnectionLimits:
    """The limits of the environment's settings (read once per process)."""
    return ConnectionLimits.from_settings(AppSettings())


class _Cycle(Protocol):
    """What the deadlines use of uvicorn's request/response cycle (h11 and httptools alike)."""

    response_started: bool
    response_complete: bool
    disconnected: bool
    message_event: asyncio.Event


def _response(status: int, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A complete plain-text response that closes the connection."""
    phrase = http.HTTPStatus(status).phrase
    body = f"{phrase}\n".encode("ascii")
    lines = [f"HTTP/1.1 {status} {phrase}".encode("ascii")]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: text/plain; charset=utf-8",
        b"content-length: " + str(len(body)).encode("ascii"),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Deadlines(asyncio.Protocol):
    """The deadlines, for mixing into one of uvicorn's HTTP protocols (before it in the bases).

    Head: from the connection's start, or from the first byte of a later request, to the end of
    the head. Body: from the end of the head to the end of the body (not counted while the app
    itself has stopped reading). Send: how long the reply may sit unread once the socket's
    buffers are full. All are whole deadlines, not gaps between bytes, so a client that drips a
    byte a second gains nothing."""

    limits: ClassVar[ConnectionLimits | None] = None  # None: `configured_limits()`

    # Set by the uvicorn protocol this is mixed into.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    flow: FlowControl
    server_state: ServerState
    client: tuple[str, int] | None
    timeout_keep_alive: int
    limit_concurrency: int | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = type(self).limits or configured_limits()
        # The settings win over uvicorn's own options, so both ways of starting agree.
        self.timeout_keep_alive = self._limits.keep_alive_timeout  # type: ignore[assignment]
        # uvicorn counts this connection too: up to `max_connections` are served.
        self.limit_concurrency = self._limits.max_connections + 1
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def _current_cycle(self) -> _Cycle | None:
        raise NotImplementedError

    def _start(
        self, timer: asyncio.TimerHandle | None, delay: float, callback: Callable[[], None]
    ) -> asyncio.TimerHandle:
        if timer is not None:
            timer.cancel()
        return self.loop.call_later(delay, callback)

    def _stop_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._send_timer = None

    def _who(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"

    def _refuse(self, status: int, cycle: _Cycle | None) -> None:
        """Answer `status` and close; `cycle`: the app's exchange that is cut short, if any."""
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()  # a reply is under way: the close is the only answer
                return
            cycle.disconnected = True  # the app's receive() returns a disconnect, its send nothing
            cycle.message_event.set()
        self.transport.write(_response(status, self.server_state.default_headers))
        self.transport.close()

    # The connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_started()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self._limits.send_timeout, self._send_late)

    def resume_writing(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        super().resume_writing()

    def _upgraded(self) -> None:
        """The connection now belongs to the WebSocket protocol, which keeps its own time."""
        self._stop_timers()

    # The request head

    def _head_started(self) -> None:
        if self._head_timer is None:
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_late)

    def _head_data(self, size: int) -> None:
        """Count the bytes of a head still incomplete; answer 431 once it is too long."""
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            log.info("%s: request head over %d bytes; closed", self._who(), MAX_HEAD_BYTES)
            self._stop_timers()
            self._refuse_head(431)

    def _refuse_head(self, status: int) -> None:
        """Answer `status` to a head, unless the previous request's reply is not done yet (a
        status now would be taken as that reply): then only close."""
        previous = self._current_cycle()
        if previous is not None and not previous.response_complete:
            self.transport.close()
        else:
            self._refuse(status, None)

    def _head_done(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        log.info(
            "%s: no complete request head within %gs; closed",
            self._who(),
            self._limits.header_timeout,
        )
        if self._head_bytes:
            self._refuse_head(408)
        else:
            self.transport.close()  # nothing was asked: nothing to answer

    # The request body

    def _body_started(self) -> None:
        self._body_timer = self._start(self._body_timer, self._limits.body_timeout, self._body_late)

    def _body_done(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_late(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # The server stopped reading (the app has not taken the body yet, or a pipelined
            # request waits): the client is not the one stalling, so look again later.
            self._body_started()
            return
        log.info(
            "%s: request body not complete within %gs; closed",
            self._who(),
            self._limits.body_timeout,
        )
        self._refuse(408, self._current_cycle())

    # The reply

    def _send_late(self) -> None:
        self._send_timer = None
        if self.transport.is_closing() and self.transport.get_write_buffer_size() == 0:
            return
        log.info(
            "%s: reply left unread for %gs; connection dropped",
            self._who(),
            self._limits.send_timeout,
        )
        # abort, not close: close would wait for the client to read what is buffered.
        self.transport.abort()


class GuardedH11Protocol(_Deadlines, H11Protocol):
    """uvicorn's h11 protocol with the deadlines (used where httptools is not installed)."""

    def _current_cycle(self) -> _Cycle | None:
        return self.cycle

    def handle_events(self) -> None:
        super().handle_events()
        if self.transport.is_closing():
            return
        # Follow the client's side of h11's state machine: IDLE with bytes buffered is a head
        # in progress (h11 itself refuses one over 16 KiB), SEND_BODY a body in progress.
        state = self.conn.their_state
        buffered = len(self.conn.trailing_data[0])
        if state is h11.IDLE and buffered:
            self._head_started()
            self._head_bytes = buffered
        elif state is not h11.IDLE:
            self._head_done()
        if state is h11.SEND_BODY:
            if self._body_timer is None:
                self._body_started()
        else:
            self._body_done()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgraded()
        super().handle_websocket_upgrade(event)


def _httptools_protocol() -> type[_Deadlines] | None:
    """uvicorn's httptools protocol with the deadlines; None where httptools is not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class GuardedHttpToolsProtocol(_Deadlines, HttpToolsProtocol):
        """uvicorn's httptools protocol with the deadlines (uvicorn's choice when installed)."""

        def _current_cycle(self) -> _Cycle | None:
            return self.cycle

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._head_timer is not None:
                # Still inside a head: these bytes were (nearly all) head.
                self._head_data(len(data))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_started()

        def on_headers_complete(self) -> None:
            self._head_done()
            super().on_headers_complete()
            self._body_started()  # on_message_complete stops it, at once when there is no body

        def on_message_complete(self) -> None:
            self._body_done()
            super().on_message_complete()

        def handle_websocket_upgrade(self) -> None:
            self._upgraded()
            super().handle_websocket_upgrade()

    # Found under this module's name, as pickle looks for it (uvicorn's workers, say).
    GuardedHttpToolsProtocol.__qualname__ = GuardedHttpToolsProtocol.__name__
    return GuardedHttpToolsProtocol


GuardedHttpToolsProtocol = _httptools_protocol()

# The protocol uvicorn's "auto" would pick, with the deadlines; its limits are the environment's
# settings (`configured_limits`) unless a subclass from `protocol_class` sets others.
GuardedHttpProtocol: type[_Deadlines] = GuardedHttpToolsProtocol or GuardedH11Protocol


def protocol_class(
    limits: ConnectionLimits, base: type[_Deadlines] | None = None
) -> type[asyncio.Protocol]:
    """An HTTP protocol class for uvicorn that applies `limits` (on `base`, default: the one
    uvicorn would pick)."""
    parent = base or GuardedHttpProtocol
    return type(parent.__name__, (parent,), {"limits": limits})


def server_config(
    app: Any,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    base: type[_Deadlines] | None = None,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's configuration for serving `app` with the connection limits of `settings`."""
    import uvicorn

    # The protocol also sets uvicorn's keep-alive timeout and concurrency limit from `settings`.
    limits = ConnectionLimits.from_settings(settings)
    options.setdefault("log_level", "warning")
    return uvicorn.Config(app, host=host, port=port, http=protocol_class(limits, base), **options)


def run_app(app: Any, settings: Settings, *, host: str, port: int) -> None:
    """Serve `app` on host:port with the connection limits of `settings`, until interrupted."""
    import uvicorn

    from serving.remote_ingest import record_app

    # The storage folder names this app while it serves, for `ingest` to send its articles to;
    # the record goes at shutdown (uvicorn re-raises SIGTERM once it is done, so no later).
    forget = record_app(app_settings(settings), host=host, port=port)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            try:
                await super().shutdown(sockets)
            finally:
                forget()

    server = Server(server_config(app, settings, host=host, port=port))
    try:
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while shutting down
            server.run()
    finally:
        forget()
    if not server.started:
        # uvicorn has logged why (the port is taken, say); exit non-zero as uvicorn.run does.
        raise SystemExit(3)
