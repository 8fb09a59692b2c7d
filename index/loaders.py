"""Read news articles from JSONL, JSON, CSV/TSV, text, Markdown and HTML files."""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from index.articles import Article
from index.documents import load_html, load_text
from index.errors import LoadIssue
from index.records import FIELDS, load_csv, load_json, load_jsonl, utf8_issue

FORMATS: tuple[str, ...] = ("jsonl", "json", "csv", "txt", "md", "html")
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
        yield from load_jsonl(path, data, overrides)
    elif fmt == "csv":
        yield from load_csv(path, data, overrides)
    elif fmt == "html":
        yield load_html(path, data)
    else:
        text = _decode(path, data)
        if isinstance(text, LoadIssue):
            yield text
        elif fmt == "json":
            yield from load_json(path, text, overrides)
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
        return utf8_issue(path, data, error)
