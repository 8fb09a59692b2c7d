"""Every prompt the assistant sends, as Markdown files shipped in the package, loaded by name."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def prompt_file(name: str) -> Traversable:
    """The file of prompt `name` (`prompts/<name>.md`), found wherever the package is installed."""
    return files(__name__) / f"{name}.md"
