"""Records from JSONL and JSON files; of a broken JSON array, every record that still parses."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Generator, Iterator
from pathlib import Path

from index.articles import Article
from index.errors import LoadIssue
from index.record_fields import SURROGATE, bad_byte_issue, from_record, kind_of

_WRAPPER_KEYS = ("articles", "data", "items", "documents")
_STRUCTURE = re.compile(r'["{}\[\],]')
# A JSON string cannot hold a raw newline, so an unclosed one ends at the end of its line.
_STRING_REST = re.compile(r'(?:[^"\\\n]|\\.)*"?')
_SPACE = re.compile(r"\s*")
_COMMA_OBJECT = re.compile(r",\s*(?=\{)")
_FIRST_KEY = re.compile(r'\{\s*"([^"\\\n]*)"\s*:')
_DECODER = json.JSONDecoder()
_KEYS_KEPT = 64
_CLOSES = {"}": "{", "]": "["}
# Bounds on the search for the next record after a bad one: a few records' worth of tokens,
# and of tries at an object, before the rest of the array is given up as one bad stretch.
_RESYNC_TOKENS = 200_000
_RESYNC_TRIES = 1_000


def load_jsonl(path: Path, text: str, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
    damaged = SURROGATE.search(text) is not None
    start, number = 0, 0
    # Line by line without a list of lines: a big file is held once, as its text.
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line, number, start = text[start:end], number + 1, end + 1
        if not line.strip():
            continue
        if damaged and (bad := SURROGATE.search(line)) is not None:
            byte = ord(bad.group()) - 0xDC00
            yield LoadIssue(
                path,
                number,
                None,
                f"not valid UTF-8 (byte 0x{byte:02x} at column {bad.start() + 1})",
            )
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield LoadIssue(path, number, None, f"invalid JSON: {error.msg} (column {error.colno})")
            continue
        yield from_record(value, path, number, overrides)


def load_json(path: Path, text: str, overrides: dict[str, str]) -> Iterator[Article | LoadIssue]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data" and _looks_like_jsonl(text):
            # A .json file that holds one object per line: read it the way it was written.
            yield from load_jsonl(path, text, overrides)
        else:
            yield from _salvage(path, text, error, overrides)
        return
    start: int | None = None
    if isinstance(document, list):
        start = text.find("[")
    elif isinstance(document, dict):
        key = next((k for k in _WRAPPER_KEYS if isinstance(document.get(k), list)), None)
        if key is None:
            line = _line_at(text, text.find("{"))
            if SURROGATE.search(text):
                yield bad_byte_issue(path, text)
            else:
                yield from_record(document, path, line, overrides)
            return
        start = _wrapper_array(text, key)
    else:
        yield LoadIssue(
            path,
            1,
            None,
            f"expected a JSON object or a list of objects, found {kind_of(document)}",
        )
        return
    del document  # the records are decoded again one by one, with their lines
    if start is None or start < 0:
        yield LoadIssue(path, 1, None, "cannot find the list of records in this JSON")
        return
    yield from _array(path, text, start, overrides)


def _salvage(
    path: Path, text: str, error: json.JSONDecodeError, overrides: dict[str, str]
) -> Iterator[Article | LoadIssue]:
    """The records of a JSON file with a syntax error: every one that parses, and an issue each
    for the bad ones; the error alone when the file holds no list of records."""
    first = _SPACE.match(text)
    position = first.end() if first else 0
    start: int | None = None
    if text.startswith("[", position):
        start = position
    elif text.startswith("{", position):
        start = next(
            (s for s in (_wrapper_array(text, k) for k in _WRAPPER_KEYS) if s is not None), None
        )
    whole = LoadIssue(path, error.lineno, None, f"invalid JSON: {error.msg} (column {error.colno})")
    if start is None:
        if text.startswith("{", position) and _looks_like_jsonl(text):
            # JSON lines in a .json file, the first of them bad: the others are still records.
            yield from load_jsonl(path, text, overrides)
        else:
            yield whole
        return
    end = yield from _array(path, text, start, overrides)
    if end is not None and not start <= error.pos < end:
        # The error lies outside the list (in a wrapper's other keys, or after it): no record
        # is lost, but the file is still not valid JSON.
        yield whole


class _Lines:
    """Line numbers of offsets that mostly grow, without counting from the top each time."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        if offset < self.offset:
            self.offset, self.line = 0, 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _array(
    path: Path, text: str, start: int, overrides: dict[str, str]
) -> Generator[Article | LoadIssue, None, int | None]:
    """Each element of the JSON array whose `[` is at `start`; a bad one is reported and skipped.

    Returns the offset just past the array's `]`, or None when the array never closes.
    """
    decoder = _DECODER
    lines = _Lines(text)
    damaged = SURROGATE.search(text) is not None
    keys: set[str] = set()  # of the good records, which the next one after a bad one shares
    position = start + 1
    while True:
        space = _SPACE.match(text, position)
        position = space.end() if space else position
        if position >= len(text):
            yield LoadIssue(
                path,
                lines.at(len(text)),
                None,
                "invalid JSON: the file ends before the list of records closes with ']' "
                "(is it cut short?)",
            )
            return None
        if text[position] == "]":
            return position + 1
        if text[position] == ",":
            # A comma too many (or a trailing one) holds no record: nothing is lost.
            position += 1
            continue
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            resume = _resume(text, position, error.pos, keys)
            yield _syntax_issue(path, text, lines, error, position, resume)
            if resume is None:
                return None
            position = resume
            continue
        line = lines.at(position)
        if isinstance(value, dict) and len(keys) < _KEYS_KEPT:
            keys.update(k for k in value if isinstance(k, str))
        if damaged and SURROGATE.search(text, position, end):
            yield bad_byte_issue(path, text, position, end)
        else:
            yield from_record(value, path, line, overrides)
        position = end


def _syntax_issue(
    path: Path,
    text: str,
    lines: _Lines,
    error: json.JSONDecodeError,
    start: int,
    resume: int | None,
) -> LoadIssue:
    first = lines.at(start)
    stop = len(text) if resume is None else resume
    # The skipped stretch ends at its last character that is not a separator.
    last = lines.at(start + len(text[start:stop].rstrip(" \t\r\n,")) - 1)
    # The error's own line, unless the parser only noticed it on the next record's line.
    line = error.lineno if first <= error.lineno <= last else first
    where = (
        f"column {error.colno}"
        if line == error.lineno
        else f"line {error.lineno}, column {error.colno}"
    )
    reason = f"invalid JSON: {error.msg} ({where})"
    span = f"line {first} is" if last == first else f"lines {first}-{last} are"
    if resume is None:
        cut = "" if text.rstrip().endswith(("]", "}")) else " (is the file cut short?)"
        reason += f"; no record after it could be read, so {span} lost{cut}"
    elif last > first:
        reason += f"; skipped the record on lines {first}-{last}"
    return LoadIssue(path, line, None, reason)


def _tokens(text: str, position: int) -> Iterator[tuple[int, int, str]]:
    """(start, end, kind) of each bracket, comma and string from `position` on."""
    while (match := _STRUCTURE.search(text, position)) is not None:
        kind, position = match.group(), match.end()
        if kind == '"':
            rest = _STRING_REST.match(text, position)
            position = rest.end() if rest else position
        yield match.start(), position, kind


def _resume(text: str, start: int, failed_at: int, keys: set[str]) -> int | None:
    """Where to go on after the bad element at `start`: just past the comma that ends it, at the
    `]` that closes the array, or at the next object that parses; None when there is none."""
    by_line = _next_record_line(text, start, failed_at, keys)
    stop = len(text) if by_line is None else by_line
    # Brackets and strings tell where the element ends, unless its damage unbalanced them;
    # the layout of the records (one to a line, or pretty-printed) is the check on that.
    open_brackets: list[str] = []
    for count, (position, end, kind) in enumerate(_tokens(text, start)):
        if count >= _RESYNC_TOKENS or position >= stop:
            break
        if kind in "{[":
            open_brackets.append(kind)
        elif kind in "}]":
            if open_brackets and open_brackets[-1] == _CLOSES[kind]:
                open_brackets.pop()
            elif not open_brackets and kind == "]":
                return position
            # A bracket that closes nothing open is part of the damage.
        elif kind == "," and not open_brackets:
            after = _SPACE.match(text, end)
            follow = after.end() if after else end
            # Quotes the damage unbalanced can make a nested comma look like the top level's;
            # on one long line, only a record after it (or no object at all) proves it is not.
            starts_line = "\n" in text[end:follow]
            if starts_line or not text.startswith("{", follow) or _record_at(text, follow, keys):
                return end
    if by_line is not None:
        return by_line
    # No layout to go by (the whole array on one line): the next object after a comma that
    # parses, searched from the last comma before the error.
    comma = text.rfind(",", start, failed_at)
    found = _COMMA_OBJECT.finditer(text, comma if comma >= 0 else failed_at)
    return next(
        (
            m.end()
            for m in itertools.islice(found, _RESYNC_TRIES)
            if _record_at(text, m.end(), keys)
        ),
        None,
    )


def _next_record_line(text: str, start: int, failed_at: int, keys: set[str]) -> int | None:
    """When the bad element starts a line: the next line that starts with `{` at its indent,
    as the records of such an array are laid out, and opens with a key the good records have."""
    line_start = text.rfind("\n", 0, start) + 1
    indent = text[line_start:start]
    if indent.strip():
        return None
    pattern = re.compile("\n" + re.escape(indent) + "(?={)")
    found = pattern.finditer(text, max(start, text.rfind("\n", 0, failed_at)))
    for match in itertools.islice(found, _RESYNC_TRIES):
        # A bad record of its own still starts as the others do: with one of their keys.
        key = _FIRST_KEY.match(text, match.end())
        if (key and (not keys or key.group(1) in keys)) or _record_at(text, match.end(), keys):
            return match.end()
    return None


def _record_at(text: str, position: int, keys: set[str]) -> bool:
    """Whether a record starts at `position`: an object sharing a key with the good records
    (a nested object seldom does), followed by a `,` or the array's `]`."""
    try:
        value, end = _DECODER.raw_decode(text, position)
    except json.JSONDecodeError:
        return False
    after = _SPACE.match(text, end)
    follow = after.end() if after else end
    if not isinstance(value, dict) or (follow < len(text) and text[follow] not in ",]"):
        return False
    return not keys or not keys.isdisjoint(value)


def _wrapper_array(text: str, key: str) -> int | None:
    """Offset of the `[` of the list under `key` in the top-level object, or None."""
    for match in re.finditer(rf'"{re.escape(key)}"\s*:\s*\[', text):
        depth = 0
        for position, end, kind in _tokens(text, 0):
            if position >= match.start():
                if position == match.start() and depth == 1:
                    return match.end() - 1
                break
            if kind in "{[":
                depth += 1
            elif kind in "}]":
                depth -= 1
            elif kind == '"' and end > match.start():
                break  # the match is inside a string
    return None


def _looks_like_jsonl(text: str) -> bool:
    """Whether the text is one JSON object a line: its first line is one, or its first few lines
    each open with `{` and one of them is an object by itself (the first may be the bad one)."""
    lines = list(itertools.islice(_lines_of(text), 5))
    if lines and _is_object(lines[0]):
        return True
    return (
        len(lines) >= 2
        and all(line.startswith("{") for line in lines)
        and any(_is_object(line) for line in lines)
    )


def _lines_of(text: str) -> Iterator[str]:
    """The lines of `text` that are not blank, stripped, without splitting the whole text."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if line := text[start:end].strip():
            yield line
        start = end + 1


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, max(offset, 0)) + 1
