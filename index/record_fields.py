"""Articles from records with keys: the fields, their aliases and checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from index.articles import Article, article_id, normalise_text, normalise_title, parse_date
from index.errors import LoadIssue

FIELDS = ("id", "title", "body", "source", "published", "url", "author", "category")
ALIASES: dict[str, tuple[str, ...]] = {
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
_TITLE_FROM_BODY_CHARS = 120
SURROGATE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, kept by surrogateescape


class BadField(Exception):
    """A record that cannot become an Article; carries the LoadIssue's field and reason."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def bad_byte(text: str, start: int = 0, end: int | None = None) -> tuple[int, int, int] | None:
    """The first byte that was not UTF-8 in `text[start:end]`: (byte, line, column), 1-based."""
    found = SURROGATE.search(text, start, len(text) if end is None else end)
    if found is None:
        return None
    position = found.start()
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return ord(found.group()) - 0xDC00, line, column


def bad_byte_issue(path: Path, text: str, start: int = 0, end: int | None = None) -> LoadIssue:
    """The issue for the first byte that was not UTF-8 in `text[start:end]`."""
    byte, line, column = bad_byte(text, start, end) or (0, 1, 1)
    return LoadIssue(
        path, line, None, f"not valid UTF-8 (byte 0x{byte:02x} at line {line}, column {column})"
    )


def from_record(
    record: object, path: Path, line: int, overrides: dict[str, str]
) -> Article | LoadIssue:
    if not isinstance(record, dict):
        return LoadIssue(path, line, None, f"expected a JSON object, found {kind_of(record)}")
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
    known = {alias for aliases in ALIASES.values() for alias in aliases} | set(overrides.values())
    for name in FIELDS:
        for alias in (overrides[name],) if name in overrides else ALIASES[name]:
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


def kind_of(value: object) -> str:
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
    raise BadField(name, f"expected text{where}, found {kind_of(value)}")


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
            raise BadField("published", f"expected a date, found {kind_of(value)}")
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
