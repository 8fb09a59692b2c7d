"""The store on embedded Chroma and on a real `chroma run` server; outages of the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from assistant.engine import Engine
from index.check import check_store, repair_store
from index.errors import StoreUnavailableError
from index.keyword import fingerprint
from index.store import ChunkStore, CircuitBreaker
from serving.config import AppSettings

from .conftest import TASS, free_port, make_settings

if TYPE_CHECKING:
    from index.embedding import Embedder

CHROMA = Path(sys.executable).parent / "chroma"


class ChromaServer:
    """`chroma run` on a loopback port, over a folder; can be stopped and started again."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.log = path.with_name(path.name + ".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChromaServer:
        assert CHROMA.exists(), f"no `chroma` command next to {sys.executable}"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    CHROMA,
                    "run",
                    "--path",
                    self.path,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                httpx.get(
                    f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1
                ).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"chroma run did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def settings(self, storage: Path, **changes: Any) -> AppSettings:
        """Settings for a store on this server, with its own collection and keyword folder."""
        return make_settings(
            storage,
            chroma_host="127.0.0.1",
            chroma_port=self.port,
            collection=f"t-{uuid.uuid4().hex[:12]}",
            **changes,
        )


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server") / "db").start()
    yield server
    server.stop()


@pytest.fixture(
    params=["embedded", pytest.param("server", marks=[pytest.mark.chroma_server, pytest.mark.slow])]
)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> AppSettings:
    """Settings for a fresh store: an embedded Chroma folder, or a collection on the server."""
    if request.param == "embedded":
        return make_settings(tmp_path / "storage")
    server: ChromaServer = request.getfixturevalue("chroma_server")
    return server.settings(tmp_path / "storage")


def _feed(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _short(number: int, text: str) -> dict[str, Any]:
    return {"id": f"short-{number}", "title": f"Short report {number}", "body": text}


ROWS = [
    _short(1, "The Tallinn tram line will open in May, the city transport office said."),
    _short(2, "Wheat prices in Kansas fell for a third week as the harvest came in early."),
]


def _in_step(store: ChunkStore) -> None:
    store.sync_keyword_index(force=True)
    ids, metas = store.iter_metadata()
    assert store.keyword.fingerprint == fingerprint(ids, metas)
    assert sorted(r.id for r in store.keyword.records) == sorted(ids)


def test_ingest_update_delete_and_search(
    store_settings: AppSettings, embedder: Embedder, tmp_path: Path
) -> None:
    engine = Engine(store_settings, embedder=embedder)
    feed = _feed(tmp_path / "feed.jsonl", ROWS)
    first = engine.index.ingest([feed, TASS], progress=False)
    assert (first.added, first.updated) == (3, 0)
    assert engine.store.count() == first.chunks_written
    again = engine.index.ingest([feed, TASS], progress=False)
    assert (again.added, again.unchanged, again.chunks_written) == (0, 3, 0)

    top = engine.search("What did Lavrov say about NATO expansion?", k=3)
    assert any("verbal pledges in the 1990s not to expand NATO" in p.text for p in top)

    _feed(feed, [ROWS[0], {**ROWS[1], "body": "Barley prices in Kansas rose sharply on Monday."}])
    changed = engine.index.ingest([feed], progress=False)
    assert (changed.updated, changed.unchanged) == (1, 1)
    assert engine.search("barley prices Kansas", k=1)[0].text.startswith("Barley prices")

    removed = engine.index.delete([top[0].article_id])
    assert removed >= 3
    assert all(p.source != "TASS" for p in engine.search("Lavrov NATO pledges", k=5))
    _in_step(engine.store)
    assert check_store(engine.store).ok


def test_check_and_repair_of_an_incomplete_article(
    store_settings: AppSettings, embedder: Embedder, tmp_path: Path
) -> None:
    engine = Engine(store_settings, embedder=embedder)
    engine.index.ingest([TASS], progress=False)
    store = engine.store
    ids = sorted(store.chunk_ids_where({"source": "TASS"}))
    store.delete_chunks(ids[:1])
    report = check_store(store)
    assert sorted(p.kind for p in report.errors) == ["incomplete article", "keyword index"]
    assert repair_store(store, report).after.ok
    assert store.count() == 0
    assert engine.index.ingest([TASS], progress=False).added == 1
    assert check_store(store).ok


def test_a_second_process_follows_writes_through_the_keyword_sync(
    store_settings: AppSettings, embedder: Embedder, tmp_path: Path
) -> None:
    writer = Engine(store_settings, embedder=embedder)
    writer.index.ingest([_feed(tmp_path / "a.jsonl", ROWS[:1])], progress=False)
    # On a server, another app process has its own keyword folder; embedded, it shares one.
    other = store_settings.with_changes(storage_dir=tmp_path / "reader")
    reader = Engine(other if store_settings.chroma_host else store_settings, embedder=embedder)
    assert reader.search("Tallinn tram", k=1)[0].title == "Short report 1"
    writer.index.ingest([_feed(tmp_path / "b.jsonl", ROWS[1:])], progress=False)
    assert reader.search("wheat prices Kansas", k=1)[0].title == "Short report 2"
    _in_step(reader.store)


def test_searches_in_flight_survive_an_ingest(
    store_settings: AppSettings, embedder: Embedder, tmp_path: Path
) -> None:
    engine = Engine(store_settings, embedder=embedder)
    engine.index.ingest([_feed(tmp_path / "a.jsonl", ROWS)], progress=False)
    batch = [
        _short(10 + n, f"Report {n}: the harbour in Quito moved {n + 3} thousand crates this week.")
        for n in range(40)
    ]
    feed = _feed(tmp_path / "batch.jsonl", batch)
    errors: list[BaseException] = []
    answered = [0]
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            try:
                assert engine.search("wheat prices Kansas", k=3)
                answered[0] += 1
            except BaseException as error:  # every failure counts
                errors.append(error)

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        report = engine.index.ingest([feed], progress=False)
    finally:
        done.set()
        for thread in clients:
            thread.join(timeout=60)
    assert not errors, errors[:3]
    assert report.added == 40 and answered[0] > 0
    assert engine.search("harbour Quito crates", k=1)[0].title.startswith("Short report")


# Outages: the server stops, hangs, and comes back.


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "db").start()
    yield server
    server.stop()


@pytest.mark.chroma_server
@pytest.mark.slow
def test_search_fails_clearly_while_the_server_is_down_and_recovers(
    own_server: ChromaServer, embedder: Embedder, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from serving.api import create_api

    engine = Engine(own_server.settings(tmp_path / "storage"), embedder=embedder)
    engine.index.ingest([TASS], progress=False)
    question = "What did Lavrov say about NATO expansion?"
    assert engine.search(question, k=1)[0].source == "TASS"
    http = TestClient(create_api(engine))
    assert http.post("/api/search", json={"question": question}).status_code == 200

    own_server.stop()
    where = f"server at 127.0.0.1:{own_server.port}"
    with pytest.raises(StoreUnavailableError, match=where):
        engine.search(question, k=1)
    with pytest.raises(StoreUnavailableError, match=where):
        engine.store.count()
    down = http.post("/api/search", json={"question": question})
    assert down.status_code == 503
    assert down.json()["error"]["type"] == "store_unavailable"
    assert where in down.json()["error"]["message"]
    assert http.get("/api/health").status_code == 503
    with pytest.raises(StoreUnavailableError, match="cannot open Chroma"):
        _ = Engine(engine.settings, embedder=embedder).store  # a process starting meanwhile

    own_server.start()  # the same port and folder
    assert engine.search(question, k=1)[0].source == "TASS"  # the same engine object
    assert http.post("/api/search", json={"question": question}).status_code == 200
    assert http.get("/api/health").json()["status"] == "ok"
    assert check_store(engine.store).ok


@pytest.mark.chroma_server
@pytest.mark.slow
def test_a_hung_server_times_out_instead_of_hanging_the_app(
    own_server: ChromaServer, embedder: Embedder, tmp_path: Path
) -> None:
    engine = Engine(own_server.settings(tmp_path / "storage"), embedder=embedder)
    engine.index.ingest([_feed(tmp_path / "a.jsonl", ROWS)], progress=False)
    assert own_server.process is not None
    os.kill(own_server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="no heartbeat"):
            engine.search("Tallinn tram", k=1)
        assert time.monotonic() - started < 15  # the stall time and a heartbeat, not 120 s
        assert engine.store.breaker.is_open
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="unavailable"):
            engine.store.count()
        assert time.monotonic() - started < 1  # the breaker answers; nothing waits
    finally:
        os.kill(own_server.process.pid, signal.SIGCONT)
    assert _eventually(lambda: engine.search("Tallinn tram", k=1))[0].title == "Short report 1"
    assert not engine.store.breaker.is_open


def _eventually(call: Callable[[], Any], seconds: float = 30) -> Any:
    """`call()` once the store answers again, retried while it raises StoreUnavailableError."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _timed(http: httpx.Client, method: str, path: str, **kwargs: Any) -> tuple[int, Any, float]:
    """(status, JSON body or None, seconds) of one request."""
    started = time.monotonic()
    response = http.request(method, path, **kwargs)
    elapsed = time.monotonic() - started
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if is_json else None, elapsed


@pytest.mark.chroma_server
@pytest.mark.slow
def test_a_hung_server_gets_503s_within_seconds_and_the_rest_of_the_app_answers(
    own_server: ChromaServer, embedder: Embedder, tmp_path: Path
) -> None:
    from serving.web import create_app

    from .conftest import LiveServer

    engine = Engine(own_server.settings(tmp_path / "storage"), embedder=embedder)
    engine.index.ingest([_feed(tmp_path / "a.jsonl", ROWS)], progress=False)
    where = f"server at 127.0.0.1:{own_server.port}"
    question = {"question": "Tallinn tram line"}
    searches = 45  # more than the 40 threads FastAPI runs its sync handlers on
    with (
        LiveServer(create_app(engine)) as live,
        httpx.Client(base_url=live.url, timeout=90) as http,
    ):
        assert http.post("/api/search", json=question).status_code == 200
        assert http.get("/api/health").json()["status"] == "ok"
        assert own_server.process is not None
        found: list[tuple[int, Any, float]] = []
        pages: dict[str, tuple[int, Any, float]] = {}

        def search() -> None:
            with httpx.Client(base_url=live.url, timeout=90) as own:
                found.append(_timed(own, "POST", "/api/search", json=question))

        clients = [threading.Thread(target=search) for _ in range(searches)]
        os.kill(own_server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            for thread in clients:
                thread.start()
            time.sleep(1)  # the searches are in flight, stuck on the server
            for path in (
                "/api/health",
                "/v1/models",
                "/docs",
                "/openapi.json",
                "/widget.js",
                "/gradio.js",
                "/embed-example.html",
            ):
                pages[path] = _timed(http, "GET", path)
            for thread in clients:
                thread.join(timeout=90)
            all_answered = time.monotonic() - started
        finally:
            os.kill(own_server.process.pid, signal.SIGCONT)

        status, body, seconds = pages.pop("/api/health")
        assert (status, body["status"]) == (503, "unavailable"), body
        assert where in body["message"] and seconds < 10, (body, seconds)
        assert body["chunks"] > 0  # what it knew before the server hung
        slow = {path: page for path, page in pages.items() if page[0] != 200 or page[2] > 5}
        assert not slow, slow
        assert len(found) == searches
        for status, body, seconds in found:
            assert status == 503 and body["error"]["type"] == "store_unavailable", body
            assert where in body["error"]["message"] and seconds < 30, (body, seconds)
        # They failed together, not one timeout after another.
        assert all_answered < 30, all_answered

        # SIGCONT: the same app answers again, without a restart.
        deadline = time.monotonic() + 30
        while (again := http.post("/api/search", json=question)).status_code != 200:
            assert again.status_code == 503 and time.monotonic() < deadline, again.text
            time.sleep(0.2)
        assert again.json()["passages"][0]["title"] == "Short report 1"
        assert http.get("/api/health").json()["status"] == "ok"


def test_ordinary_errors_do_not_trip_the_breaker(
    settings: AppSettings, embedder: Embedder, tmp_path: Path
) -> None:
    engine = Engine(settings, embedder=embedder)
    engine.index.ingest([_feed(tmp_path / "a.jsonl", ROWS)], progress=False)
    store = engine.store
    for _ in range(3):
        with pytest.raises(Exception, match="operator") as bad_filter:
            store.chunk_ids_where({"article_id": {"$nonsense": ["x"]}})
        assert not isinstance(bad_filter.value, StoreUnavailableError)
        with pytest.raises(Exception, match="dimension") as bad_vector:
            store.dense_search(np.zeros(3, dtype=np.float32), k=1)
        assert not isinstance(bad_vector.value, StoreUnavailableError)
    assert not store.breaker.is_open
    started = time.monotonic()
    assert engine.search("Tallinn tram", k=1)[0].title == "Short report 1"
    store.ping()
    assert time.monotonic() - started < 30 and not store.breaker.is_open


def test_the_breaker_fails_fast_then_lets_one_probe_through() -> None:
    breaker = CircuitBreaker("server at 127.0.0.1:1", cooldown=0.3)
    probes: list[str] = []

    def failing() -> None:
        probes.append("failed")
        raise StoreUnavailableError("Chroma is unavailable (server at 127.0.0.1:1): still down")

    assert breaker.admit(failing) is False and probes == []  # closed: no probe at all
    breaker.trip("Chroma is unavailable (server at 127.0.0.1:1): no heartbeat")
    with pytest.raises(StoreUnavailableError, match="no heartbeat"):
        breaker.admit(failing)
    assert probes == []  # within the cooldown: failed at once
    time.sleep(0.4)
    with pytest.raises(StoreUnavailableError, match="still down"):
        breaker.admit(failing)
    assert probes == ["failed"] and breaker.is_open
    with pytest.raises(StoreUnavailableError, match="still down"):
        breaker.admit(failing)  # the failed probe started a new cooldown
    assert probes == ["failed"]

    release = threading.Event()

    def slow_success() -> None:
        probes.append("passed")
        release.wait(10)

    time.sleep(0.4)
    prober = threading.Thread(target=breaker.admit, args=(slow_success,))
    prober.start()
    deadline = time.monotonic() + 10
    while probes[-1] != "passed" and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(StoreUnavailableError):
        breaker.admit(slow_success)  # one probe at a time; the others still fail at once
    release.set()
    prober.join(timeout=10)
    assert probes == ["failed", "passed"] and not breaker.is_open
    assert breaker.admit(failing) is False  # closed again: calls go ahead
