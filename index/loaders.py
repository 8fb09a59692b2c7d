"""Read news articles from JSONL, JSON, CSV/TSV, text, Markdown and HTML files."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from bs4 import BeautifulSoup, Tag

from index.articles import (
    MONTH_PATTERN,
    Article,
    article_id,
    month_number,
    normalise_text,
    normalise_title,
    parse_date,
)
from index.errors import LoadIssue

FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "txt", "md", "html")
FIELDS = ("id", "title", "body", "source", "published", "url", "author", "category")
MAX_FILE_BYTES = 200 * 1024 * 1024

_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
}
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
_CRUMBS = {"all news", "home", "news", "menu", "skip to content", "advertisement", "share"}

_FILE_DATE = re.compile(r"(?<!\d)((?:19|20)\d\d)-?(\d\d)-?(\d\d)(?!\d)")
_DATELINE = re.compile(
    r"^(?P<place>[A-Z][A-Z.'’\- ]{1,40}?)"
    r"(?:,\s+(?P<region>[A-Z][A-Za-z.' ]{1,30}?))?"
    rf"(?:,\s+(?P<month>(?i:{MONTH_PATTERN}))\.?\s+(?P<day>\d{{1,2}})(?:,\s+(?P<year>\d{{4}}))?)?"
    r"(?:\.\s*/(?P<slash>[^/\n]{2,30})/\.?|\s*\((?P<paren>[^)\n]{2,30})\)\s*[-—–])",
    re.M,
)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_MD_EMPHASIS = re.compile(r"(\*{1,3})(\S(?:.*?\S)?)\1")
_SURROGATE = re.compile("[\udc80-\udcff]")

_HTML_DROP = (
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "template",
)
_HTML_BLOCKS = ("p", "h2", "h3", "h4", "h5", "h6", "li", "blockquote")
_HTML_DATE_META = (
    "article:published_time",
    "date",
    "pubdate",
    "publish-date",
    "dc.date",
    "dc.date.issued",
    "dcterms.date",
    "datepublished",
)
_BR = "\ue000"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)


class _BadField(Exception):
    """A record that cannot become an Article; carries the LoadIssue's field and reason."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def detect_format(path: Path) -> str | None:
    """The loader format for a file name's suffix, or None when it is not one we read."""
    return _SUFFIXES.get(path.suffix.lower())


def load_paths(
    paths: Iterable[Path],
    *,
    fmt: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> Iterator[Article | LoadIssue]:
    """Every record in the files and folders given, as an Article or a LoadIssue saying why not.

    Raises ValueError at once for an unknown `fmt` or a `fields` key that is not in FIELDS;
    bad data never raises.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    overrides: dict[str, str] = {}
    for name, key in (fields or {}).items():
        if name not in FIELDS:
            raise ValueError(f"unknown field {name!r}; expected one of {', '.join(FIELDS)}")
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"the key for field {name!r} must be a non-empty string")
        overrides[name] = key.strip().lower()
    return _load_all(paths, fmt, overrides)


def _load_all(
    paths: Iterable[Path], fmt: str | None, overrides: dict[str, str]
) -> Iterator[Article | LoadIssue]:
    for given in paths:
        for item in _files(Path(given), fmt):
            if isinstance(item, LoadIssue):
                yield item
            else:
                path, file_fmt = item
                yield from _load_file(path, file_fmt, overrides)


def _files(path: Path, fmt: str | None) -> Iterator[tuple[Path, str] | LoadIssue]:
    if not path.exists():
        yield LoadIssue(path, None, None, "no such file or folder")
        return
    if not path.is_dir():
        found = fmt or detect_format(path)
        if found is None:
            yield LoadIssue(
                path,
                None,
                None,
                f"unknown format (suffix {path.suffix or 'none'!r}); "
                f"use one of {', '.join(sorted(_SUFFIXES))} or name the format",
            )
        else:
            yield path, found
        return
    errors: list[OSError] = []
    files: list[Path] = []
    for folder, dirnames, filenames in os.walk(path, onerror=errors.append):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        files.extend(Path(folder, name) for name in filenames if not name.startswith("."))
    for error in errors:
        yield LoadIssue(Path(error.filename or path), None, None, _os_reason(error))
    for file in sorted(files, key=lambda p: p.relative_to(path).parts):
        found = fmt or detect_format(file)
        if found is not None:
            yield file, found


def _os_reason(error: OSError) -> str:
    return f"cannot read: {error.strerror or error}"


def _load_file(path: Path, fmt: str, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
    data = _read_bytes(path)
    if isinstance(data, LoadIssue):
        yield data
        return
    if fmt == "jsonl":
        yield from _load_jsonl(path, data, overrides)
    elif fmt == "csv":
        yield from _load_csv(path, data, overrides)
    elif fmt == "html":
        yield _load_html(path, data)
    else:
        text = _decode(path, data)
        if isinstance(text, LoadIssue):
            yield text
        elif fmt == "json":
            yield from _load_json(path, text, overrides)
        else:
            yield _load_text(path, text, fmt, overrides)


def _read_bytes(path: Path) -> bytes | LoadIssue:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # Reading a pipe or a device could block for ever or never end.
            return LoadIssue(path, None, None, "not a regular file")
        size = info.st_size
        if size > MAX_FILE_BYTES:
            return LoadIssue(
                path,
                None,
                None,
                f"file too large ({size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB)",
            )
        data = path.read_bytes()
    except OSError as error:
        return LoadIssue(path, None, None, _os_reason(error))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return LoadIssue(path, None, None, "not valid UTF-16 despite its byte-order mark")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    if not data.strip():
        return LoadIssue(path, None, None, "empty file")
    if b"\x00" in data[:8192]:
        return LoadIssue(path, None, None, "binary file, not text")
    return data


def _decode(path: Path, data: bytes) -> str | LoadIssue:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _utf8_issue(path, data, error)


def _utf8_issue(path: Path, data: bytes, error: UnicodeDecodeError) -> LoadIssue:
    line = data.count(b"\n", 0, error.start) + 1
    column = error.start - data.rfind(b"\n", 0, error.start)
    return LoadIssue(
        path,
        line,
        None,
        f"not valid UTF-8 (byte 0x{data[error.start]:02x} at line {line}, column {column})",
    )


# Records with keys: JSONL, JSON, CSV and front matter.


def _load_jsonl(
    path: Path, data: bytes, overrides: dict[str, str]
) -> Iterator[Article | LoadIssue]:
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


def _load_json(path: Path, text: str, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data" and _looks_like_jsonl(text):
            # A .json file that holds one object per line: read it the way it was written.
            yield from _load_jsonl(path, text.encode("utf-8"), overrides)
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


def _load_csv(path: Path, data: bytes, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
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
    values, extra = _map_fields(record, overrides)
    try:
        return _article(values, extra, path, line)
    except _BadField as bad:
        return LoadIssue(path, line, bad.field, bad.reason)


def _map_fields(
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
    raise _BadField(name, f"expected text{where}, found {_kind(value)}")


def _article(
    values: Mapping[str, tuple[str, object]],
    extra: dict[str, str],
    path: Path,
    line: int,
    *,
    fallback_date: str = "",
) -> Article:
    """Validate and normalise one record; raises _BadField for what cannot be used."""
    text = {name: "" for name in FIELDS}
    for name, (key, value) in values.items():
        if name != "published":
            text[name] = _as_text(name, key, value)
    body = normalise_text(text["body"])
    if not body:
        raise _BadField("body", "missing or empty body")
    published = fallback_date
    if "published" in values:
        key, value = values["published"]
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _BadField("published", f"expected a date, found {_kind(value)}")
        try:
            published = parse_date(value)
        except (ValueError, OverflowError, OSError):
            raise _BadField("published", f"cannot read date {value!r}") from None
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


# Whole-file formats: text, Markdown, HTML.


def _load_text(path: Path, text: str, fmt: str, overrides: dict[str, str]) -> Article | LoadIssue:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    meta, first_line = _front_matter(lines)
    values, extra = _map_fields(meta, overrides)
    lines = lines[first_line:]
    title_at: int | None = None
    if "body" not in values:
        if "title" in values:
            given = values["title"][1]
            first = next((n for n, line in enumerate(lines) if line.strip()), None)
            if first is not None and isinstance(given, str):
                heading = _strip_markdown([lines[first]])[0] if fmt == "md" else lines[first]
                if normalise_title(heading) == normalise_title(given):
                    title_at = first
        else:
            title_at = _find_title(lines, fmt)
    if fmt == "md":
        lines = _strip_markdown(lines)
    body_lines = lines
    if title_at is not None:
        values.setdefault("title", ("title", lines[title_at].strip()))
        body_lines = lines[title_at + 1 :]
    values.setdefault("body", ("body", "\n".join(body_lines)))
    fallback_date = _file_date(path)
    lead = [line for line in body_lines if line.strip()][:3]
    dateline = _DATELINE.search("\n".join(line.strip() for line in lead))
    if dateline:
        outlet = (dateline["slash"] or dateline["paren"] or "").strip()
        if outlet and "source" not in values:
            values["source"] = ("source", outlet)
        year = dateline["year"] or fallback_date[:4]
        if dateline["month"] and year:
            month = month_number(dateline["month"]) or 0
            with contextlib.suppress(ValueError):
                fallback_date = parse_date(f"{year}-{month:02d}-{int(dateline['day']):02d}")
    try:
        return _article(values, extra, path, 1, fallback_date=fallback_date)
    except _BadField as bad:
        return LoadIssue(path, 1, bad.field, bad.reason)


def _front_matter(lines: list[str]) -> tuple[dict[str, object], int]:
    """`key: value` pairs between leading `---` lines, and the index of the first line after."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    meta: dict[str, object] = {}
    last_key: str | None = None
    for number, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            return meta, number + 1
        item = re.match(r"^\s*-\s+(.*)$", line)
        if item and last_key is not None:
            current = meta.get(last_key)
            listed = current if isinstance(current, list) else []
            listed.append(_unquote(item.group(1)))
            meta[last_key] = listed
            continue
        pair = re.match(r"^([A-Za-z_][\w -]*?)\s*:\s*(.*)$", line)
        if pair:
            last_key = pair.group(1).strip()
            meta[last_key] = _unquote(pair.group(2)) if pair.group(2).strip() else None
    return {}, 0


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _strip_markdown(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.strip().startswith("```"):
            continue
        heading = _MD_HEADING.match(line)
        if heading:
            line = heading.group(1)
        line = _MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", line))
        out.append(_MD_EMPHASIS.sub(r"\2", line))
    return out


def _find_title(lines: list[str], fmt: str) -> int | None:
    """Index of the headline line: a Markdown heading, a headline-like line, or the first line."""
    candidates = [n for n, line in enumerate(lines) if line.strip()][:6]
    if not candidates:
        return None
    if fmt == "md" and _MD_HEADING.match(lines[candidates[0]]):
        return candidates[0]
    for n in candidates:
        line = lines[n].strip()
        words = line.split()
        if 4 <= len(words) <= 30 and len(line) <= 200 and line[-1] not in ".,:;":
            return n
    useful = [n for n in candidates if lines[n].strip().lower() not in _CRUMBS]
    # A file that is one paragraph has no title line; its title comes from the body.
    if len(useful) < 2:
        return None
    return useful[0]


def _file_date(path: Path) -> str:
    match = _FILE_DATE.search(path.name)
    if not match:
        return ""
    try:
        return parse_date("-".join(match.groups()))
    except ValueError:
        return ""


def _load_html(path: Path, data: bytes) -> Article | LoadIssue:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        declared = _META_CHARSET.search(data[:4096])
        encoding = declared.group(1).decode("ascii", "replace") if declared else ""
        try:
            text = data.decode(codecs.lookup(encoding).name, "replace")
        except LookupError:
            return _utf8_issue(path, data, error)
    soup = BeautifulSoup(text, "lxml")
    meta = _html_meta(soup)
    values: dict[str, tuple[str, object]] = {}

    def put(name: str, key: str, value: str | None) -> None:
        if value and value.strip() and name not in values:
            values[name] = (key, value.strip())

    site = meta.get("og:site_name")
    put("title", "og:title", meta.get("og:title"))
    put("title", "twitter:title", meta.get("twitter:title"))
    if soup.title is not None:
        put("title", "title", _strip_site(soup.title.get_text(), site))
    h1 = soup.find("h1")
    if h1 is not None:
        put("title", "h1", h1.get_text(" "))
    for name in _HTML_DATE_META:
        put("published", name, meta.get(name))
    for element in soup.find_all(itemprop="datePublished"):
        put("published", "datePublished", _attr(element, "datetime") or _attr(element, "content"))
    for element in soup.find_all("time"):
        put("published", "time", _attr(element, "datetime"))
    canonical = soup.find("link", rel="canonical")
    put("url", "canonical", _attr(canonical, "href") if canonical is not None else None)
    put("url", "og:url", meta.get("og:url"))
    put("source", "og:site_name", site)
    put("source", "publisher", meta.get("publisher"))
    put("author", "author", meta.get("author"))
    put("category", "article:section", meta.get("article:section"))
    values["body"] = ("body", _html_body(soup))
    try:
        return _article(values, {}, path, 1, fallback_date=_file_date(path))
    except _BadField as bad:
        return LoadIssue(path, 1, bad.field, bad.reason)


def _attr(element: object, name: str) -> str | None:
    if not isinstance(element, Tag):
        return None
    value = element.get(name)
    return " ".join(value) if isinstance(value, list) else value


def _html_meta(soup: BeautifulSoup) -> dict[str, str]:
    """First content of each <meta> by its lower-cased property, name or itemprop."""
    found: dict[str, str] = {}
    for element in soup.find_all("meta"):
        content = _attr(element, "content")
        if not content:
            continue
        for attribute in ("property", "name", "itemprop"):
            key = _attr(element, attribute)
            if key:
                found.setdefault(key.strip().lower(), content)
    return found


def _strip_site(title: str, site: str | None) -> str:
    title = " ".join(title.split())
    if site:
        for separator in (" | ", " - ", " – ", " — "):
            suffix = separator + site.strip()
            if title.lower().endswith(suffix.lower()) and len(title) > len(suffix):
                return title[: -len(suffix)]
    return title


def _html_body(soup: BeautifulSoup) -> str:
    for element in soup.find_all(_HTML_DROP):
        element.decompose()
    container = soup.find("article") or soup.find("main") or soup.body or soup
    if not isinstance(container, Tag):
        return ""
    # Newlines in the markup are layout; only <br> breaks a line, so mark it apart.
    for br in container.find_all("br"):
        br.replace_with(_BR)
    blocks = []
    for element in container.find_all(_HTML_BLOCKS):
        # A block that holds other blocks is read through them, so nothing comes out twice.
        if element.find(_HTML_BLOCKS) is None:
            words = " ".join(element.get_text().split())
            block = "\n".join(part.strip() for part in words.split(_BR) if part.strip())
            if block:
                blocks.append(block)
    if blocks:
        return "\n\n".join(blocks)
    return container.get_text("\n").replace(_BR, "\n")
