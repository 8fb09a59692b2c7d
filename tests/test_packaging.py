"""A plain `pip install .` (not editable) ships the prompts, the static files and the demo data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

CHECK = """
import sys
from pathlib import Path

import assistant, index, prompts, serving, news_assistant_data
from assistant.llm import load_prompt
from index.demo import DEMO_FILES
from serving.api import STATIC_DIR

site = Path(sys.argv[1]).resolve()
for module in (assistant, index, prompts, serving, news_assistant_data):
    assert Path(module.__file__).resolve().is_relative_to(site), module.__file__
assert "{question}" in load_prompt("answer-user")
assert all(path.is_file() for path in DEMO_FILES), DEMO_FILES
assert (STATIC_DIR / "widget.js").is_file()
assert list(news_assistant_data.DEMO_DIR.glob("vectors-*.npz"))
print("ok")
"""


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
    )


def test_a_wheel_installed_elsewhere_finds_its_files(tmp_path: Path) -> None:
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO))
    (wheel,) = wheels.glob("news_assistant-*.whl")
    _pip("install", "--no-deps", "--target", str(site), str(wheel))

    # The installed copy comes first on the path: the checkout is neither the working
    # directory nor importable, so only what the wheel holds can be found.
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(site)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    help_text = subprocess.run(
        [sys.executable, "-m", "serving.cli", "--help"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "ingest" in help_text.stdout
