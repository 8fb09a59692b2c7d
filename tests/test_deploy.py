"""deploy/: the example compose file, its nginx config and health check hold together.

Docker is not run here: the compose file is parsed, each service's command is parsed by the real
`news-assistant` command line (and `chroma run --help`), each setting it sets is a real one, and
the health-check script is run against a local server."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import click
import pytest

from index.config import ENV_PREFIX
from serving.cli import cli
from serving.config import AppSettings
from tests.conftest import REPO

yaml = pytest.importorskip("yaml")

DEPLOY = REPO / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _argv(service: dict[str, Any]) -> list[str]:
    entry, command = service.get("entrypoint", []), service.get("command", [])
    assert isinstance(entry, list) and isinstance(command, list), "use the exec (list) form"
    return [*entry, *command]


def test_the_services_are_one_chroma_two_apps_a_balancer_and_a_writer(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"chroma", "app1", "app2", "balancer", "watch", "ingest"}
    for name in ("app1", "app2"):
        app = services[name]
        assert _argv(app)[:2] == ["news-assistant", "serve"]
        assert app["environment"][f"{ENV_PREFIX}CHROMA_HOST"] == "chroma"
        assert "/api/health" in " ".join(app["healthcheck"]["test"])
        assert app["depends_on"]["chroma"]["condition"] == "service_healthy"
    # One host: the replicas and the writers share storage_dir (the keyword index's deltas).
    shared = {"state:/var/lib/news-assistant"}
    for name in ("app1", "app2", "watch", "ingest"):
        assert shared <= set(services[name]["volumes"])
        assert (
            services[name]["environment"][f"{ENV_PREFIX}STORAGE_DIR"] == "/var/lib/news-assistant"
        )
    assert _argv(services["watch"])[:2] == ["news-assistant", "watch"]
    assert _argv(services["ingest"])[:2] == ["news-assistant", "ingest"]
    for service in services.values():
        for needed in service.get("depends_on", {}):
            assert needed in services


def _parse(argv: list[str]) -> None:
    """Parse `news-assistant COMMAND ARGS` as the real command line does, without running it."""
    assert argv[0] == "news-assistant" and len(argv) > 1
    command = cli.commands.get(argv[1])
    if command is None:
        raise click.UsageError(f"no command {argv[1]!r}")
    command.make_context(argv[1], argv[2:])


def test_every_command_is_a_real_news_assistant_command(compose: dict[str, Any]) -> None:
    commands = [_argv(s) for s in compose["services"].values()]
    ours = [argv for argv in commands if argv and argv[0] == "news-assistant"]
    assert len(ours) == 4
    for argv in ours:
        _parse(argv)
    with pytest.raises(click.UsageError):
        _parse(["news-assistant", "serve", "--no-such-option"])  # the check can fail


def test_the_chroma_server_command_takes_its_options(compose: dict[str, Any]) -> None:
    argv = _argv(compose["services"]["chroma"])
    assert argv[:2] == ["chroma", "run"]
    chroma = REPO / ".venv" / "bin" / "chroma"
    if not chroma.exists():
        pytest.skip("no chroma command installed")
    usage = subprocess.run(
        [str(chroma), "run", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    for option in (a for a in argv if a.startswith("--")):
        assert option in usage, option
    port = argv[argv.index("--port") + 1]
    assert compose["x-settings"][f"{ENV_PREFIX}CHROMA_PORT"] == port


def test_every_setting_the_services_set_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith(ENV_PREFIX) and variable != f"{ENV_PREFIX}CONFIG":
                field = variable.removeprefix(ENV_PREFIX).lower()
                assert field in AppSettings.model_fields, f"{name}: {variable}"


def test_the_balancer_sends_to_both_replicas(compose: dict[str, Any]) -> None:
    config = (DEPLOY / "nginx.conf").read_text()
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", config, re.MULTILINE)
    assert sorted(servers) == [("app1", "7860"), ("app2", "7860")]
    serve = _argv(compose["services"]["app1"])
    assert serve[serve.index("--port") + 1] == "7860"
    mounts = compose["services"]["balancer"]["volumes"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in mounts
    limit = re.search(r"client_max_body_size (\d+)m;", config)
    assert limit and int(limit.group(1)) * 1024 * 1024 == AppSettings().ingest_max_bytes


class _Status(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_health_check_script_tells_200_from_503(status_server: str) -> None:
    def check(path: str) -> int:
        script = str(DEPLOY / "healthcheck.py")
        return subprocess.run([sys.executable, script, status_server + path], timeout=30).returncode

    assert check("/api/health") == 0
    assert check("/api/other") == 1
