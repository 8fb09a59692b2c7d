"""Shared fixtures: offline guard, the real bundled model loaded once, stores in temp dirs."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from index.config import quiet_offline_environment
from serving.config import AppSettings, app_settings

if TYPE_CHECKING:  # the engine and the model load lazily, when a test first needs them
    from assistant.engine import Engine
    from index.embedding import Embedder

quiet_offline_environment()

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "data" / "demo"
TASS = DEMO / "tass-2022-01-28-lavrov-security-guarantees.txt"


class NetworkAccessError(RuntimeError):
    """A test tried to reach a host outside this machine."""


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple):
        return True  # AF_UNIX paths
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_local(address):
        raise NetworkAccessError(f"blocked outbound connection to {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_local(address):
        raise NetworkAccessError(f"blocked outbound connection to {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def no_network() -> Iterator[None]:
    """Fail any test whose code opens a connection to anything but loopback."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    from index.embedding import Embedder

    model = Embedder(AppSettings())
    assert model.dimensions == 384  # one embedder (model, ONNX session) for the whole session
    return model


def make_settings(storage: Path, **changes: Any) -> AppSettings:
    return AppSettings(storage_dir=storage, keyword_sync_seconds=0, **changes)


def indexed_engine(
    paths: Sequence[Path],
    storage: Path,
    embedder: Embedder,
    *,
    demo_vectors: bool = False,
    **changes: Any,
) -> Engine:
    """An engine whose store in `storage` holds the articles under `paths`, with `changes` to the
    test settings. `demo_vectors`: take the demo articles' vectors from the file shipped with the
    repo instead of embedding them."""
    from assistant.engine import Engine

    engine = Engine(make_settings(storage, **changes), embedder=embedder)
    cache = None
    if demo_vectors:
        from index.demo import DEFAULT_DEMO, DEMO_CORPORA, shipped_vectors

        cache = shipped_vectors(DEMO_CORPORA[DEFAULT_DEMO], embedder)
    engine.index.ingest(paths, vector_cache=cache, progress=False)
    return engine


def engine_over(
    folder: Path, articles: list[dict[str, Any]], embedder: Embedder, **changes: Any
) -> Engine:
    """An engine over `articles`, written to `folder`/corpus.json and indexed in `folder`/store."""
    corpus = folder / "corpus.json"
    corpus.write_text(json.dumps(articles))
    return indexed_engine([corpus], folder / "store", embedder, **changes)


def engine_with_scripted_llm(
    small_engine: Engine, monkeypatch: pytest.MonkeyPatch, reply: str
) -> Engine:
    """Plumbing around the LLM: the engine as configured for one, the reply written here (sent
    five characters at a time, as a stream)."""
    from assistant.engine import Engine
    from assistant.llm import Generator

    def scripted(self: Generator, messages: Sequence[Any]) -> Iterator[str]:
        yield from (reply[i : i + 5] for i in range(0, len(reply), 5))

    monkeypatch.setattr(Generator, "stream", scripted)
    return Engine(
        small_engine.settings.with_changes(llm_url="http://127.0.0.1:9/v1"),
        embedder=small_engine.embedder,
    )


@pytest.fixture
def settings(tmp_path: Path) -> AppSettings:
    return make_settings(tmp_path / "storage")


def demo_articles(count: int, *, containing: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The first `count` demo articles, plus any whose title contains one of `containing`."""
    rows = [json.loads(line) for line in (DEMO / "whitehouse-2022.jsonl").open()]
    chosen = rows[:count] + [r for r in rows[count:] if any(c in r["title"] for c in containing)]
    return chosen


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of a few real demo articles and the TASS seed."""
    folder = tmp_path_factory.mktemp("corpus")
    rows = demo_articles(12, containing=("Russia", "Ukraine"))[:40]
    with (folder / "whitehouse.jsonl").open("w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    (folder / TASS.name).write_text(TASS.read_text())
    return folder


@pytest.fixture(scope="session")
def small_engine(
    tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, embedder: Embedder
) -> Engine:
    """An engine over the small corpus, indexed once per session (read-only for tests)."""
    storage = tmp_path_factory.mktemp("small-store")
    # the same chunks as the demo's: no embedding needed
    return indexed_engine([small_corpus], storage, embedder, demo_vectors=True)


# The web app: an index with the TASS article and a hostile one, and live servers over it.

XSS_QUESTION = "What did the Zanzibar pineapple festival banner say?"
XSS_ARTICLE = {
    "id": "xss-test-article",
    "title": "Zanzibar pineapple festival <img src=x onerror=\"window.__xss='title'\">",
    "source": "<b>Festival</b> Post",
    "date": "2022-02-10",
    "url": "javascript:window.__xss='url'",
    "body": (
        "The Zanzibar pineapple festival banner said <script>window.__xss='script'</script> "
        "in large letters.\n\n"
        "Organisers of the Zanzibar pineapple festival also printed "
        "<img src=x onerror=\"window.__xss='img'\"> and ${window.__xss='template'} on the "
        "festival programme, which surprised the visitors."
    ),
}


@pytest.fixture(scope="session")
def web_engine(
    tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, embedder: Embedder
) -> Engine:
    """An engine over the small corpus plus an article full of HTML/JS payloads."""
    extra = tmp_path_factory.mktemp("web-corpus") / "hostile.jsonl"
    extra.write_text(json.dumps(XSS_ARTICLE) + "\n")
    storage = tmp_path_factory.mktemp("web-store")
    return indexed_engine([small_corpus, extra], storage, embedder, demo_vectors=True)


@contextmanager
def served_app(command: Sequence[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`command` (which serves on a port) run from the repo, yielded once /api/health on the
    URL after `--port` answers (at most 180 s); stopped, or killed, afterwards."""
    url = f"http://127.0.0.1:{command[list(command).index('--port') + 1]}"
    process = subprocess.Popen(
        list(command),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the app did not start within 180 s"
            try:
                if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving an ASGI app on a loopback port, in a thread of the test process."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        import threading

        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def embed_origin() -> str:
    """The origin of the 'other site' that embeds the app; it is in the app's cors_origins."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def web_server(web_engine: Engine, embed_origin: str) -> Iterator[LiveServer]:
    """The real app (UI + API) over `web_engine`, allowing `embed_origin`."""
    from serving.web import create_app

    settings = app_settings(web_engine.settings).with_changes(cors_origins=[embed_origin])
    with LiveServer(create_app(web_engine, settings)) as server:
        yield server
