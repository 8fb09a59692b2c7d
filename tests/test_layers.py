"""The house's shape: imports point down the layers, never up, and no module imports itself back."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.config import OFFLINE_ENVIRONMENT
from tests.conftest import REPO

# Lower numbers are lower layers. Prompts and the bundled data are resources of every layer.
LAYERS = {
    "prompts": 0,
    "news_assistant_data": 0,
    "index": 1,
    "assistant": 2,
    "evaluation": 3,
    "serving": 4,
    "app": 5,
}
PACKAGES = ("index", "assistant", "evaluation", "serving", "prompts")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[0] == "data":
        parts = ("news_assistant_data", *parts[1:])
    return ".".join(p for p in parts if p != "__init__")


def _sources() -> list[Path]:
    found = [REPO / "app.py", REPO / "data" / "__init__.py"]
    for package in PACKAGES:
        found.extend(sorted((REPO / package).rglob("*.py")))
    return found


def _imports(path: Path, *, top_level_only: bool) -> list[tuple[int, str]]:
    """(line, module) for each import of one of our packages in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in LAYERS]


def test_the_layer_table_covers_every_module() -> None:
    names = {_module_name(p).split(".")[0] for p in _sources()}
    assert names == set(LAYERS)


def test_no_module_imports_a_layer_above_its_own() -> None:
    wrong = []
    for path in _sources():
        own = LAYERS[_module_name(path).split(".")[0]]
        for line, name in _imports(path, top_level_only=False):
            if LAYERS[name.split(".")[0]] > own:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_module_level_imports_have_no_cycle() -> None:
    modules = {_module_name(p): p for p in _sources()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _, imported in _imports(path, top_level_only=True):
            # `from a.b import c` may name a module a.b.c or a name in a.b; either way a.b is loaded
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets

    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                return [*path, name, target]
            if target not in state and (cycle := visit(target, [*path, name])):
                return cycle
        state[name] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name, [])
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.slow
def test_importing_the_packages_changes_no_environment_variable() -> None:
    code = (
        "import os; before = dict(os.environ); "
        "import index, assistant, evaluation.answers, serving.api, serving.cli; "
        "changed = sorted(k for k in set(before) | set(os.environ) "
        "if before.get(k) != os.environ.get(k)); print(changed); assert not changed"
    )
    clean = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENVIRONMENT}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_command_starts_without_what_only_some_commands_need() -> None:
    """`news-assistant ingest` sending to a running app starts a new process each time: the
    command line does not import what only a local ingest needs (datasketch imports scipy,
    half a second) or what only a question needs (torch)."""
    heavy = "{'datasketch', 'torch', 'scipy'}"
    code = f"import sys, serving.cli; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_an_api_only_app_starts_without_gradio() -> None:
    """The page (serving.page) brings Gradio, 4 s of imports; the HTTP API does not need it."""
    code = "import sys, serving.web, serving.api; print('gradio' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False", result.stdout
