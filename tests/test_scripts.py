"""scripts/install.sh skips pip while its stamp in .venv is current, and installs when it is not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # runs bash

# Stands in for .venv/bin/python: logs what it is asked; "pip install" makes the entry point.
FAKE_PYTHON = """#!/bin/sh
bin=$(dirname "$0")
echo "$*" >>"$bin/../calls.log"
if [ "$1" = -m ]; then
    printf '#!/bin/sh\\n' >"$bin/news-assistant"
    chmod +x "$bin/news-assistant"
fi
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what the script reads, with a .venv whose python installs nothing."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "install.sh", tmp_path / "scripts" / "install.sh")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def install(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "install.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pip_calls(checkout: Path) -> list[str]:
    log = checkout / ".venv" / "calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [c for c in calls if c.startswith("-m pip install")]


def test_install_runs_once_then_only_when_its_inputs_change(checkout: Path) -> None:
    assert install(checkout, "--check", "app").returncode == 1  # never installed

    first = install(checkout, "app")
    assert first.returncode == 0, first.stderr
    assert "install: News Assistant into .venv" in first.stdout
    assert any(c.endswith("-e .") for c in pip_calls(checkout))
    assert install(checkout, "--check", "app").returncode == 0

    again = install(checkout, "app")
    assert again.returncode == 0 and "install: skipped" in again.stdout
    assert pip_calls(checkout) == []

    (checkout / "pyproject.toml").write_text(
        (checkout / "pyproject.toml").read_text() + "\n# a new dependency\n"
    )
    assert install(checkout, "--check", "app").returncode == 1
    assert install(checkout, "app").returncode == 0
    assert any(c.endswith("-e .") for c in pip_calls(checkout))
    assert install(checkout, "--check").returncode == 0  # app is the default target


def test_the_test_install_covers_the_app_but_not_the_reverse(checkout: Path) -> None:
    assert install(checkout, "app").returncode == 0
    assert install(checkout, "--check", "test").returncode == 1
    tested = install(checkout, "test")
    assert tested.returncode == 0 and "with its test extras" in tested.stdout
    assert any(c.endswith("-e .[test]") for c in pip_calls(checkout))
    (checkout / ".venv" / ".news-assistant-install-app").unlink()
    assert install(checkout, "--check", "app").returncode == 0


def test_a_venv_without_the_entry_point_is_not_up_to_date(checkout: Path) -> None:
    assert install(checkout, "app").returncode == 0
    (checkout / ".venv" / "bin" / "news-assistant").unlink()
    assert install(checkout, "--check", "app").returncode == 1
    assert install(checkout, "--check", "nonsense").returncode == 2
