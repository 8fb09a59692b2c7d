"""Articles from CSV records, and the one place to import every record reader from."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path

from index.articles import Article
from index.errors import LoadIssue
from index.json_records import load_json, load_jsonl
from index.record_fields import (
    ALIASES,
    FIELDS,
    SURROGATE,
    BadField,
    bad_byte,
    bad_byte_issue,
    from_record,
    make_article,
    map_fields,
)

# The loaders and the document readers take these names from here.
__all__ = [
    "FIELDS",
    "SURROGATE",
    "BadField",
    "bad_byte",
    "bad_byte_issue",
    "load_csv",
    "load_json",
    "load_jsonl",
    "make_article",
    "map_fields",
]


def load_csv(path: Path, text: str, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
    # Bytes that were not UTF-8 come as surrogates, so only the rows that hold them are rejected.
    bad_lines = _surrogate_lines(text) if SURROGATE.search(text) else {}
    first_newline = text.find("\n")
    header_line = text[: first_newline if first_newline >= 0 else len(text)]
    delimiter = max(",\t;|", key=header_line.count) if path.suffix.lower() != ".tsv" else "\t"
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield LoadIssue(path, reader.line_num or start, None, f"invalid CSV: {error}")
            return
        if not any(cell.strip() for cell in row):
            continue
        line = next((n for n in range(start, reader.line_num + 1) if n in bad_lines), None)
        if line is not None:
            byte, column = bad_lines[line]
            yield LoadIssue(
                path,
                line,
                None,
                f"not valid UTF-8 (byte 0x{byte:02x} at line {line}, column {column})",
            )
            if header is None:
                return
            continue
        if header is None:
            header = [name.strip() for name in row]
            missing = _missing_body(header, overrides)
            if missing:
                # Every row would fail the same way: say it once, for the file.
                yield LoadIssue(path, start, "body", missing)
                return
            continue
        if len(row) > len(header):
            yield LoadIssue(
                path,
                start,
                None,
                f"row has {len(row)} fields but the header has {len(header)}",
            )
            continue
        record = {name: cell for name, cell in zip(header, row, strict=False) if name}
        yield from_record(record, path, start, overrides)


def _surrogate_lines(text: str) -> dict[int, tuple[int, int]]:
    """For each line holding undecodable bytes: the first bad byte and its 1-based column."""
    found: dict[int, tuple[int, int]] = {}
    line, counted = 1, 0
    for match in SURROGATE.finditer(text):
        line += text.count("\n", counted, match.start())
        counted = match.start()
        if line not in found:
            column = match.start() - text.rfind("\n", 0, match.start())
            found[line] = (ord(match.group()) - 0xDC00, column)
    return found


def _missing_body(header: list[str], overrides: dict[str, str]) -> str | None:
    """Why a CSV header has no column to take the article text from; None when it has one."""
    names = {name.lower() for name in header}
    if "body" in overrides:
        if overrides["body"] in names:
            return None
        wanted = f"no column named {overrides['body']!r}, the one named for the body"
    elif names & set(ALIASES["body"]):
        return None
    else:
        aliases = ALIASES["body"]
        wanted = f"no body column (one named {', '.join(aliases[:-1])} or {aliases[-1]})"
    shown = ", ".join(repr(name) for name in header[:12] if name) or "no names"
    more = f" and {len(header) - 12} more" if len(header) > 12 else ""
    return (
        f"no rows read: {wanted}; the header has {shown}{more}. "
        "Name the column that holds the text with --field body=COLUMN"
    )
