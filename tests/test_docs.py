"""The README and docs/ stay true to the code: the settings table, the links, the length."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serving.config import AppSettings, settings_table
from tests.conftest import REPO

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
TABLE_START = "<!-- settings-table -->"
TABLE_END = "<!-- /settings-table -->"
MAX_README_LINES = 330

FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), the text may hold [n]; the target ends at whitespace or ")".
LINK = re.compile(r"!?\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def _readme_table() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(TABLE_START) == 1 and text.count(TABLE_END) == 1, (
        f"README.md needs exactly one {TABLE_START} ... {TABLE_END} pair"
    )
    return text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()


def test_readme_settings_table_is_generated_from_the_settings() -> None:
    assert _readme_table() == settings_table(), (
        "README.md's settings table is out of date with the settings classes: run "
        "`.venv/bin/python -m serving.config` and paste its output between the "
        f"{TABLE_START} and {TABLE_END} lines of README.md"
    )


@pytest.mark.parametrize("name", list(AppSettings.model_fields))
def test_every_setting_says_what_it_does(name: str) -> None:
    description = AppSettings.model_fields[name].description
    assert description and description.strip(), (
        f"setting {name!r} has no description=; the README's settings table shows it"
    )


def _relative_links(path: Path) -> list[str]:
    text = FENCED_BLOCK.sub("", path.read_text(encoding="utf-8"))
    text = INLINE_CODE.sub("", text)
    return [target for target in LINK.findall(text) if not EXTERNAL.match(target)]


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a page's headings ("## `/docs` is served" -> docs-is-served)."""
    text = FENCED_BLOCK.sub("", path.read_text(encoding="utf-8"))
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_files_in_the_repository(page: Path) -> None:
    broken = []
    for target in _relative_links(page):
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        exists = resolved.is_relative_to(REPO) and resolved.exists()
        if not exists or (anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved)):
            broken.append(target)
    assert not broken, f"{page.relative_to(REPO)} links to what does not exist: {broken}"


def test_readme_links_to_every_docs_page() -> None:
    linked = {Path(target.partition("#")[0]) for target in _relative_links(README)}
    missing = [p.name for p in DOCS if p.relative_to(REPO) not in linked]
    assert not missing, f"README.md does not link to docs/ pages {missing}"


def test_the_link_checker_sees_links() -> None:
    targets = _relative_links(README)
    assert "docs/screenshot.png" in targets
    assert "data/README.md" in targets
    assert not any(EXTERNAL.match(t) for t in targets)


def test_readme_stays_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail to docs/"
    )
