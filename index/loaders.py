"""Read news articles from JSONL, JSON, CSV/TSV, text, Markdown and HTML files, and the web."""

from __future__ import annotations

import codecs
import itertools
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeAlias

from charset_normalizer import from_bytes

from index.articles import Article
from index.documents import declared_charset, load_html, load_text
from index.errors import LoadIssue, LoadNote
from index.records import (
    FIELDS,
    SURROGATE,
    bad_byte,
    bad_byte_issue,
    load_csv,
    load_json,
    load_jsonl,
)
from index.web_pages import WebAddress, load_url

Loaded: TypeAlias = Article | LoadIssue | LoadNote

FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "txt", "md", "html")
MAX_FILE_BYTES = 200 * 1024 * 1024
# Formats whose records are read one by one: bad bytes in a UTF-8 file cost only their record.
_PER_RECORD = ("jsonl", "json", "csv")
_GOOD_NON_ASCII = re.compile("[\u0080-\udc7f\udd00-\U0010ffff]")
_COUNT_UP_TO = 10_000
# How much more disorder than the best guess cp1252 may show and still be chosen (see _legacy).
_CP1252_SLACK = 0.02

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


def detect_format(path: Path) -> str | None:
    """The loader format for a file name's suffix, or None when it is not one we read."""
    return _SUFFIXES.get(path.suffix.lower())


def load_paths(
    paths: Iterable[Path],
    *,
    fmt: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> Iterator[Loaded]:
    """Every record in the files and folders given, as an Article or a LoadIssue saying why not,
    with a LoadNote for what was assumed on the way (an encoding, a followed link).

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
) -> Iterator[Loaded]:
    for given in paths:
        if isinstance(given, WebAddress):
            yield from load_url(given)
            continue
        for item in _files(Path(given), fmt):
            if isinstance(item, LoadIssue | LoadNote):
                yield item
            else:
                path, file_fmt = item
                yield from _load_file(path, file_fmt, overrides)


def _files(path: Path, fmt: str | None) -> Iterator[tuple[Path, str] | LoadIssue | LoadNote]:
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
    notes: list[LoadNote] = []
    files = _walk(path, errors, notes)
    yield from notes
    for error in errors:
        yield LoadIssue(Path(error.filename or path), None, None, _os_reason(error))
    for file in sorted(files, key=lambda p: p.relative_to(path).parts):
        found = fmt or detect_format(file)
        if found is not None:
            yield file, found


def _walk(top: Path, errors: list[OSError], notes: list[LoadNote]) -> list[Path]:
    """Every file under `top` that is not hidden, following links to folders, each folder once."""
    info = top.stat()
    first_seen: dict[tuple[int, int], Path] = {(info.st_dev, info.st_ino): top}
    files: list[Path] = []
    for folder, dirnames, filenames in os.walk(top, onerror=errors.append, followlinks=True):
        keep = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            sub = Path(folder, name)
            try:
                info = sub.stat()
            except OSError as error:
                errors.append(error)
                continue
            key = (info.st_dev, info.st_ino)
            target = Path(os.path.realpath(sub))
            seen = first_seen.get(key)
            if seen is not None:
                # Following it again would read the same articles twice, or never end.
                notes.append(LoadNote(sub, _revisit(sub, target, seen)))
                continue
            first_seen[key] = sub
            if sub.is_symlink():
                notes.append(LoadNote(sub, f"a link to the folder {target}; followed"))
            keep.append(name)
        dirnames[:] = keep
        files.extend(Path(folder, name) for name in filenames if not name.startswith("."))
    return files


def _revisit(sub: Path, target: Path, seen: Path) -> str:
    if not sub.is_symlink():
        return f"already read through the link {seen}; not read again"
    if sub.is_relative_to(seen):
        return f"a link back to {target}, a folder that holds it; not followed (it would loop)"
    return f"a link to {target}, already read as {seen}; not read again"


def _os_reason(error: OSError) -> str:
    return f"cannot read: {error.strerror or error}"


def _load_file(path: Path, fmt: str, overrides: dict[str, str]) -> Iterator[Loaded]:
    data = _read_bytes(path)
    if isinstance(data, LoadIssue):
        yield data
        return
    decoded = _decode(path, data, fmt)
    del data  # a big file is held once, as its text, while its records are read
    if isinstance(decoded, LoadIssue):
        yield decoded
        return
    text, note = decoded
    if note is not None:
        yield note
    if fmt == "jsonl":
        yield from load_jsonl(path, text, overrides)
    elif fmt == "csv":
        yield from load_csv(path, text, overrides)
    elif fmt == "json":
        yield from load_json(path, text, overrides)
    elif fmt == "html":
        yield load_html(path, text)
    else:
        yield load_text(path, text, fmt, overrides)


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
        if path.is_symlink() and not path.exists():
            return LoadIssue(path, None, None, f"a link to {os.readlink(path)}, which is not there")
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


def _decode(path: Path, data: bytes, fmt: str) -> tuple[str, LoadNote | None] | LoadIssue:
    """The file's text: UTF-8, a page's declared charset, or else the encoding that fits best."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    declared = declared_charset(data) if fmt == "html" else None
    if declared is not None and declared != "utf-8":  # a page that says UTF-8 but is not
        return data.decode(declared, "replace"), None
    # Bytes that are not UTF-8 become surrogates, which the record loaders find and report.
    text = data.decode("utf-8", "surrogateescape")
    if _mostly_utf8(text):
        # A UTF-8 file with a few damaged bytes: another encoding would garble all the rest.
        if fmt in _PER_RECORD:
            return text, None
        return bad_byte_issue(path, text)
    encoding = _legacy(data)
    if encoding is None:
        byte, line, column = bad_byte(text) or (0, 1, 1)
        return LoadIssue(
            path,
            line,
            None,
            f"binary file, not text: neither UTF-8 (byte 0x{byte:02x} at line {line}, "
            f"column {column}) nor any other encoding fits; if it is text, save it as UTF-8",
        )
    return data.decode(encoding, "replace"), LoadNote(path, f"not UTF-8; read as {encoding}")


def _mostly_utf8(text: str) -> bool:
    """Whether the file has at least as many valid UTF-8 letters as bad bytes (to a bound)."""
    bad = sum(1 for _ in itertools.islice(SURROGATE.finditer(text), _COUNT_UP_TO))
    good = sum(1 for _ in itertools.islice(_GOOD_NON_ASCII.finditer(text), _COUNT_UP_TO))
    return good >= bad


def _legacy(data: bytes) -> str | None:
    """The 8-bit (or other) encoding that fits the bytes best, or None when none does."""
    best = from_bytes(data).best()
    if best is None:
        return None
    # On a short text many code pages fit equally well, and the detector's first pick among
    # them (often cp1250) garbles Western accents and quotes. cp1252, a superset of Latin-1's
    # letters and the usual non-UTF-8 news encoding, wins whenever it fits about as well.
    western = from_bytes(data, cp_isolation=["cp1252"]).best()
    if western is not None and western.chaos <= best.chaos + _CP1252_SLACK:
        return "cp1252"
    return str(best.encoding)
