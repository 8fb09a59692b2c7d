"""Articles from records with keys: the fields, their aliases and checks; JSONL, JSON, CSV."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from index.articles import Article, article_id, normalise_text, normalise_title, parse_date
from index.errors import LoadIssue

FIELDS = ("id", "title", "body", "source", "published", "url", "author", "category")
_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "doc_id", "guid", "article_id"),
    "title": ("title", "headline", "name"),
    "body": ("body", "text", "content", "article", "story", "full_text"),
    "source": (
        "source",
        "outlet",
        "publisher",
        "site_name",
        "site",
        "publication",
        "source_name",
    ),
    "published": (
        "published_at",
        "published",
        "date",
        "pub_date",
        "publish_date",
        "publication_date",
        "datetime",
        "timestamp",
        "time",
    ),
    "url": ("url", "link", "canonical_url", "href", "permalink"),
    "author": ("author", "authors", "byline"),
    "category": ("category", "section", "topic", "categories"),
}
_WRAPPER_KEYS = ("articles", "data", "items", "documents")
_TITLE_FROM_BODY_CHARS = 120
_SURROGATE = re.compile("[\udc80-\udcff]")


class BadField(Exception):
    """A record that cannot become an Article; carries the LoadIssue's field and reason."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def utf8_issue(path: Path, data: bytes, error: UnicodeDecodeError) -> LoadIssue:
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - data.rfind(b"\n", 0, error.start)
    return LoadIssue(
        path,
        line,
        None,
        f"not valid UTF-8 (byte 0x{data[error.start]:02x} at line {line}, column {column})",
    )


def load_jsonl(path: Path, data: bytes, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield LoadIssue(
                path,
                number,
                None,
                f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1})",
            )
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield LoadIssue(path, number, None, f"invalid JSON: {error.msg} (column {error.colno})")
            continue
        yield _from_record(value, path, number, overrides)


def load_json(path: Path, text: str, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data" and _looks_like_jsonl(text):
            # A .json file that holds one object per line: read it the way it was written.
            yield from load_jsonl(path, text.encode("utf-8"), overrides)
            return
        yield LoadIssue(
            path, error.lineno, None, f"invalid JSON: {error.msg} (column {error.colno})"
        )
        return
    start: int | None = None
    records: list[object] | None = None
    if isinstance(document, list):
        records, start = document, text.find("[")
    elif isinstance(document, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(document.get(key), list):
                records = document[key]
                found = re.search(rf'"{key}"\s*:\s*\[', text)
                start = found.end() - 1 if found else None
                break
        else:
            yield _from_record(document, path, _line_at(text, text.find("{")), overrides)
            return
    if records is None:
        yield LoadIssue(
            path,
            1,
            None,
            f"expected a JSON object or a list of objects, found {_kind(document)}",
        )
        return
    lines = _element_lines(text, start, len(records)) if start is not None else None
    for index, record in enumerate(records):
        yield _from_record(record, path, lines[index] if lines else 1, overrides)


def _looks_like_jsonl(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, max(offset, 0)) + 1


def _element_lines(text: str, start: int, count: int) -> list[int] | None:
    """The line each element of the JSON array at `start` begins on; None if the scan fails."""
    decoder = json.JSONDecoder()
    blank = re.compile(r"[\s,]*")
    lines: list[int] = []
    position = start + 1
    line, counted = _line_at(text, position), position
    for _ in range(count):
        match = blank.match(text, position)
        position = match.end() if match else position
        line += text.count("\n", counted, position)
        counted = position
        lines.append(line)
        try:
            _, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return None
    return lines


def load_csv(path: Path, data: bytes, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
    try:
        text = data.decode("utf-8")
        bad_lines: dict[int, tuple[int, int]] = {}
    except UnicodeDecodeError:
        # Keep the bad bytes as surrogates so only the rows that hold them are rejected.
        text = data.decode("utf-8", "surrogateescape")
        bad_lines = _surrogate_lines(text)
    header_line = text.split("\n", 1)[0]
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
        yield _from_record(record, path, start, overrides)


def _surrogate_lines(text: str) -> dict[int, tuple[int, int]]:
    """For each line holding undecodable bytes: the first bad byte and its 1-based column."""
    found: dict[int, tuple[int, int]] = {}
    line, counted = 1, 0
    for match in _SURROGATE.finditer(text):
        line += text.count("\n", counted, match.start())
        counted = match.start()
        if line not in found:
            column = match.start() - text.rfind("\n", 0, match.start())
            found[line] = (ord(match.group()) - 0xDC00, column)
    return found


def _from_record(
    record: object, path: Path, line: int, overrides: dict[str, str]
) -> Article | LoadIssue:
    if not isinstance(record, dict):
        return LoadIssue(path, line, None, f"expected a JSON object, found {_kind(record)}")
    values, extra = map_fields(record, overrides)
    try:
        return make_article(values, extra, path, line)
    except BadField as bad:
        return LoadIssue(path, line, bad.field, bad.reason)


def map_fields(
    record: Mapping[str, object], overrides: dict[str, str]
) -> tuple[dict[str, tuple[str, object]], dict[str, str]]:
    """Canonical field -> (the record's key, value), and the unknown text fields left over."""
    by_key = {key.strip().lower(): key for key in record if isinstance(key, str)}
    values: dict[str, tuple[str, object]] = {}
    known = {alias for aliases in _ALIASES.values() for alias in aliases} | set(overrides.values())
    for name in FIELDS:
        for alias in (overrides[name],) if name in overrides else _ALIASES[name]:
            key = by_key.get(alias)
            if key is not None and record[key] is not None and record[key] != "":
                values[name] = (key, record[key])
                break
    extra = {
        key: normalise_text(value)
        for lowered, key in by_key.items()
        if lowered not in known and isinstance(value := record[key], str) and value.strip()
    }
    return values, extra


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return type(value).__name__


def _as_text(name: str, key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if name == "id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if name in ("source", "author") and isinstance(value, dict):
        inner = value.get("name")
        if isinstance(inner, str):
            return inner
    if name in ("author", "category") and isinstance(value, list):
        parts = [_as_text(name, key, item) for item in value if item is not None]
        return ", ".join(part.strip() for part in parts if part.strip())
    where = "" if key.lower() == name else f" (key {key!r})"
    raise BadField(name, f"expected text{where}, found {_kind(value)}")


def make_article(
    values: Mapping[str, tuple[str, object]],
    extra: dict[str, str],
    path: Path,
    line: int,
    *,
    fallback_date: str = "",
) -> Article:
    """Validate and normalise one record; raises BadField for what cannot be used."""
    text = {name: "" for name in FIELDS}
    for name, (key, value) in values.items():
        if name != "published":
            text[name] = _as_text(name, key, value)
    body = normalise_text(text["body"])
    if not body:
        raise BadField("body", "missing or empty body")
    published = fallback_date
    if "published" in values:
        key, value = values["published"]
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise BadField("published", f"expected a date, found {_kind(value)}")
        try:
            published = parse_date(value)
        except (ValueError, OverflowError, OSError):
            raise BadField("published", f"cannot read date {value!r}") from None
    title = normalise_title(text["title"]) or _title_from_body(body)
    url = text["url"].strip()
    return Article(
        id=article_id(url=url, title=title, body=body, given=text["id"].strip()),
        title=title,
        body=body,
        source=normalise_title(text["source"]),
        published=published,
        url=url,
        author=normalise_title(text["author"]),
        category=normalise_title(text["category"]),
        origin=f"{path}:{line}",
        extra=extra,
    )


def _title_from_body(body: str) -> str:
    first = body.split("\n", 1)[0].strip()
    if len(first) > _TITLE_FROM_BODY_CHARS:
        sentence = re.match(r"(.+?[.!?])(?=\s)", first)
        if sentence:
            first = sentence.group(1)
    if len(first) > _TITLE_FROM_BODY_CHARS:
        cut = first[:_TITLE_FROM_BODY_CHARS].rsplit(" ", 1)[0]
        first = cut.rstrip(",;:") + "…"
    return first
