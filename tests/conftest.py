"""Shared fixtures: offline guard, the real bundled model loaded once, stores in temp dirs."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.config import Settings, quiet_offline_environment

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


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise NetworkAccessError(f"blocked outbound connection to {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
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
def embedder() -> Any:
    from index.embedding import Embedder

    model = Embedder(Settings())
    assert model.dimensions == 384  # loads the model once for the whole session
    return model


def make_settings(storage: Path, **changes: Any) -> Settings:
    return Settings(storage_dir=storage, keyword_sync_seconds=0, **changes)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
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
    tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, embedder: Any
) -> Any:
    """An engine over the small corpus, indexed once per session (read-only for tests)."""
    from assistant.engine import Engine
    from index.pipeline import ingest

    settings = make_settings(tmp_path_factory.mktemp("small-store"))
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    ingest([small_corpus], settings=settings, store=engine.store, embedder=embedder, progress=False)
    return engine
