"""Sentence splitting, quotation marks, and chunks of whole sentences counted in the model's
wordpieces."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sen",
    "rep",
    "gov",
    "gen",
    "col",
    "lt",
    "sgt",
    "capt",
    "st",
    "jr",
    "sr",
    "inc",
    "corp",
    "co",
    "ltd",
    "vs",
    "etc",
    "no",
    "vol",
    "fig",
    "dept",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "u.s",
    "u.k",
    "u.n",
    "e.g",
    "i.e",
    "a.m",
    "p.m",
    "d.c",
    "pres",
    "amb",
    "adm",
    "mt",
}
# A sentence ends at . ! or ? (plus closing quotes/brackets), before white space and a capital,
# digit, quote or bracket; a paragraph break always ends one.
_BOUNDARY = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9])|\n\s*\n""")


QUOTE_CHARS = '"“”'


@dataclass(frozen=True, slots=True)
class Span:
    """Characters [start, end) of a text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of whole sentences of one article, with its place in the article."""

    index: int
    start: int
    end: int
    text: str
    tokens: int
    sentences: str = ""  # `sentence_map` of the text: kept, so that excerpts need not redo it


def split_sentences(text: str) -> list[Span]:
    """Sentence spans of `text`, trimmed of surrounding white space."""
    spans: list[Span] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end() if match.group().strip() else match.start()
        if match.group().strip() and _is_abbreviation(text, match.start()):
            continue
        _add_trimmed(text, start, end, spans)
        start = match.end()
    _add_trimmed(text, start, len(text), spans)
    return spans


def quote_marks(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bool]]:
    """Positions of the quotation marks in text[start:end], each with whether it opens."""
    for i in range(start, len(text) if end is None else end):
        char = text[i]
        if char in QUOTE_CHARS:
            before = text[i - 1] if i else " "
            yield i, char == "“" or (char == '"' and (before.isspace() or before in "([—–-:"))


def quote_depth_after(text: str, depth: int = 0) -> int:
    """How many quotations are still open after `text`, starting `depth` deep."""
    for _, opening in quote_marks(text):
        if opening:
            depth += 1
        elif depth:
            depth -= 1
    return depth


def _is_abbreviation(text: str, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word = re.search(r"([\w.]+)$", text[max(0, dot - 12) : dot])
    if not word:
        return False
    token = word.group(1).lower()
    # Single capitals ("J. Smith") and known abbreviations do not end sentences.
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _add_trimmed(text: str, start: int, end: int, spans: list[Span]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append(Span(start, end))


TokenCounter = Callable[[Sequence[str]], list[int]]


def chunk_text(
    text: str, *, count_tokens: TokenCounter, max_tokens: int, overlap_tokens: int
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most `max_tokens`, repeating about
    `overlap_tokens` of trailing sentences at the start of the next chunk."""
    pieces = _sentence_pieces(text, count_tokens=count_tokens, max_tokens=max_tokens)
    chunks: list[Chunk] = []
    first = 0
    while first < len(pieces):
        last, total = first, pieces[first][1]
        while last + 1 < len(pieces) and total + pieces[last + 1][1] <= max_tokens:
            last += 1
            total += pieces[last][1]
        start, end = pieces[first][0].start, pieces[last][0].end
        piece = text[start:end]
        sentences = sentence_map(piece, count_tokens)
        chunks.append(Chunk(len(chunks), start, end, piece, total, sentences))
        if last + 1 >= len(pieces):
            break
        # Step back over whole sentences for the overlap, but always move forward.
        next_first, carried = last + 1, 0
        while next_first - 1 > first and carried + pieces[next_first - 1][1] <= overlap_tokens:
            next_first -= 1
            carried += pieces[next_first][1]
        first = next_first
    return chunks


def sentence_map(text: str, count_tokens: TokenCounter) -> str:
    """The sentences of `text` as `split_sentences` cuts them, with their wordpieces: "start
    end wordpieces" for each, all space-separated. A chunk keeps its map in its metadata."""
    spans = split_sentences(text)
    counts = count_tokens([text[s.start : s.end] for s in spans])
    return " ".join(f"{s.start} {s.end} {n}" for s, n in zip(spans, counts, strict=True))


def read_sentence_map(value: object, length: int) -> list[tuple[int, int, int]] | None:
    """The (start, end, wordpieces) a `sentence_map` holds, if `value` is one that fits a text
    of `length` characters (ascending spans inside it); else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        numbers = [int(n) for n in value.split(" ")]
    except ValueError:
        return None
    if len(numbers) % 3:
        return None
    out = list(zip(numbers[0::3], numbers[1::3], numbers[2::3], strict=True))
    last = 0
    for start, end, tokens in out:
        if not last <= start < end <= length or tokens < 0:
            return None
        last = end
    return out


def _sentence_pieces(
    text: str, *, count_tokens: TokenCounter, max_tokens: int
) -> list[tuple[Span, int]]:
    """Sentences with their token counts; a sentence over the limit is cut at word breaks."""
    spans = split_sentences(text)
    counts = count_tokens([text[s.start : s.end] for s in spans])
    pieces: list[tuple[Span, int]] = []
    for span, count in zip(spans, counts, strict=True):
        if count <= max_tokens:
            pieces.append((span, count))
        else:
            pieces.extend(_split_long(text, span, count_tokens, max_tokens))
    return pieces


def _split_long(
    text: str, span: Span, count_tokens: TokenCounter, max_tokens: int
) -> list[tuple[Span, int]]:
    words = [m.span() for m in re.finditer(r"\S+", text[span.start : span.end])]
    word_counts = count_tokens([text[span.start + a : span.start + b] for a, b in words])
    pieces: list[tuple[Span, int]] = []
    first, total = 0, 0
    for i, count in enumerate(word_counts):
        if total and total + count > max_tokens:
            pieces.append((Span(span.start + words[first][0], span.start + words[i - 1][1]), total))
            first, total = i, 0
        total += min(count, max_tokens)
    pieces.append((Span(span.start + words[first][0], span.start + words[-1][1]), total))
    return pieces
