"""Citations: [n] markers, whole-quote sentence units, support checks, dense renumbering."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.answer import Citation
from assistant.retrieve import Passage
from index.chunking import QUOTE_CHARS, quote_depth_after, split_sentences
from index.embedding import Embedder
from index.keyword import keyword_tokens

# [1], [1, 2], [1][2] and ranges such as [1-3]; numbers of up to three digits.
MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;–-]\s*\d{1,3})*)\]")
# What may be the start of a marker that the next piece of a stream completes.
_PARTIAL_MARKER = re.compile(r"\[[\d,;\s–-]{0,12}$")
_MARKERS_AT_START = re.compile(r"(?:\s*\[\d{1,3}(?:\s*[,;–-]\s*\d{1,3})*\])+")

# A claim is supported by a passage sentence when the two mean nearly the same (SEMANTIC), or
# are close (SEMANTIC_WITH_WORDS) and share at least half of the claim's content words (LEXICAL).
# MiniLM similarity is topical: it cannot tell "prices rose" from "prices fell", so this check
# catches citations to the wrong passage and claims about other things, not contradictions.
SUPPORT_SEMANTIC = 0.75
SUPPORT_SEMANTIC_WITH_WORDS = 0.5
SUPPORT_LEXICAL = 0.5

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_MAX_UNIT_SENTENCES = 6
_MIN_UNIT_WORDS = 7


def marker_numbers(marker_body: str) -> list[int]:
    """The numbers of one marker's inside: "1, 2" -> [1, 2]; "1-3" -> [1, 2, 3]."""
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", marker_body.strip()):
        span = re.fullmatch(r"(\d+)\s*[–-]\s*(\d+)", part)
        if span and 0 <= int(span[2]) - int(span[1]) < 20:
            numbers.extend(range(int(span[1]), int(span[2]) + 1))
        elif part.isdigit():
            numbers.append(int(part))
    return numbers


def cited_numbers(text: str) -> list[int]:
    """Every number cited in `text`, in order, repeats kept."""
    return [n for match in MARKER.finditer(text) for n in marker_numbers(match.group(1))]


def strip_markers(text: str) -> str:
    """`text` without its [n] markers (and the space before each)."""
    return re.sub(r"\s*" + MARKER.pattern, "", text).strip()


def hold_partial_marker(text: str) -> tuple[str, str]:
    """Split streamed text into what is safe to show and a trailing half-written marker."""
    match = _PARTIAL_MARKER.search(text)
    if match is None:
        return text, ""
    return text[: match.start()], text[match.start() :]


_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")


def answer_sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentence spans of an answer (lines split too), each keeping the [n] markers written
    right after its full stop."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        for span in split_sentences(line.group()):
            start, end = line.start() + span.start, line.start() + span.end
            lead = _MARKERS_AT_START.match(text, start, end)
            if lead and spans:
                spans[-1] = (spans[-1][0], lead.end())
                start = lead.end()
                while start < end and text[start].isspace():
                    start += 1
            if start < end:
                spans.append((start, end))
    return spans


def split_answer_sentences(text: str) -> list[str]:
    """Sentences of an answer without list bullets, each with its trailing [n] markers."""
    return [_BULLET.sub("", text[start:end]) for start, end in answer_sentence_spans(text)]


class SentenceStream:
    """Turns streamed text into whole answer sentences, holding back half-written markers."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        """Sentences completed by `piece`; the last, possibly unfinished one stays buffered.

        A sentence is complete once the next has begun with text, not just markers, so
        that markers written after its full stop stay with it."""
        self._buffer += piece
        safe, _ = hold_partial_marker(self._buffer)
        spans = answer_sentence_spans(safe)
        if len(spans) < 2:
            return []
        done = [_BULLET.sub("", safe[start:end]) for start, end in spans[:-1]]
        self._buffer = self._buffer[spans[-1][0] :]
        return done

    def finish(self) -> list[str]:
        """Whatever is left when the stream ends."""
        rest, self._buffer = self._buffer, ""
        return split_answer_sentences(rest)


@dataclass(frozen=True, slots=True)
class Unit:
    """Whole sentences of one passage; a quote running over several sentences stays one unit."""

    passage: int  # index into the passages
    start: int  # offsets in the passage text
    end: int
    text: str

    def display(self) -> str:
        return " ".join(self.text.split())


_INITIALS_END = re.compile(r"\b(?:[A-Z]\.){1,3}$")


def passage_units(passage: Passage, index: int) -> list[Unit]:
    """The sentence units of a passage: sentences joined while a quotation is open, a very
    short sentence ("Yes, absolutely.") joined to the next of its paragraph, and one ending in
    a colon joined to the next."""
    text = passage.text
    spans = split_sentences(text)
    units: list[Unit] = []
    i = 0
    while i < len(spans):
        j = i
        depth = quote_depth_after(text[spans[i].start : spans[i].end])
        while j + 1 < len(spans) and j - i + 1 < _MAX_UNIT_SENTENCES:
            short = (
                len(text[spans[i].start : spans[j].end].split()) < _MIN_UNIT_WORDS
                and text[spans[j + 1].start] not in QUOTE_CHARS
            )
            # "... the President signed into law:" leads into what follows, even a list item.
            # "... signed into law: H.R." + "1192, the ...": a split after initials, not a sentence.
            lead_in = text[spans[j].end - 1] == ":" or bool(
                _INITIALS_END.search(text, spans[j].start, spans[j].end)
                and text[spans[j + 1].start].isdigit()
            )
            if not (depth or short or lead_in) or (
                not lead_in and _PARAGRAPH_BREAK.search(text, spans[j].end, spans[j + 1].start)
            ):
                break
            j += 1
            depth = quote_depth_after(text[spans[j].start : spans[j].end], depth)
        if depth and j > i and j + 1 >= len(spans):
            j = i  # the quotation runs on past the passage: keep its first sentence alone
        start, end = spans[i].start, spans[j].end
        units.append(Unit(index, start, end, text[start:end]))
        i = j + 1
    return units


class SentenceVectors:
    """Embeddings of sentence units, cached by text (passages recur across questions)."""

    def __init__(self, embedder: Embedder, *, max_items: int = 50_000) -> None:
        self.embedder = embedder
        self.max_items = max_items
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.embedder.embed(missing)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    self._cache[text] = vector
                while len(self._cache) > self.max_items:
                    self._cache.popitem(last=False)
        with self._lock:
            rows = [self._cache.get(t) for t in texts]
        if any(row is None for row in rows):  # evicted meanwhile by another thread
            return self.embedder.embed(list(texts))
        if not rows:
            return np.zeros((0, self.embedder.dimensions), dtype=np.float32)
        return np.stack([r for r in rows if r is not None])


@dataclass(frozen=True, slots=True)
class Support:
    """How well one passage backs one claim, and the passage sentence that backs it best."""

    unit: Unit
    semantic: float
    lexical: float

    @property
    def supported(self) -> bool:
        return self.semantic >= SUPPORT_SEMANTIC or (
            self.semantic >= SUPPORT_SEMANTIC_WITH_WORDS and self.lexical >= SUPPORT_LEXICAL
        )


class Evidence:
    """The retrieved passages split into units with their vectors: what answers are checked on."""

    def __init__(self, passages: Sequence[Passage], vectors: SentenceVectors) -> None:
        self.passages = list(passages)
        self.units = [u for i, p in enumerate(self.passages) for u in passage_units(p, i)]
        self.vectors = vectors
        self._matrix: np.ndarray | None = None
        self.tokens = [set(keyword_tokens(u.text)) for u in self.units]  # keyword terms per unit

    @property
    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            self._matrix = self.vectors.embed([u.display() for u in self.units])
        return self._matrix

    def units_of(self, passage: int) -> list[int]:
        return [i for i, u in enumerate(self.units) if u.passage == passage]

    def support(self, claim: str, passage: int, claim_vector: np.ndarray | None = None) -> Support:
        """The best unit of `passage` for `claim` (markers already stripped)."""
        rows = self.units_of(passage)
        if not rows:
            raise IndexError(passage)
        if claim_vector is None:
            claim_vector = self.vectors.embed([claim])[0]
        claim_tokens = set(keyword_tokens(claim))
        semantic = self.matrix[rows] @ claim_vector
        lexical = np.array([_overlap(claim_tokens, self.tokens[r]) for r in rows])
        best = int(np.argmax(semantic + 0.5 * lexical))
        return Support(self.units[rows[best]], float(semantic[best]), float(lexical[best]))

    def best_support(self, claim: str) -> tuple[int, Support] | None:
        """The passage that backs `claim` best, if any passage does."""
        if not self.units:
            return None
        vector = self.vectors.embed([claim])[0]
        found = [(p, self.support(claim, p, vector)) for p in range(len(self.passages))]
        found = [(p, s) for p, s in found if self.units_of(p)]
        p, s = max(found, key=lambda ps: ps[1].semantic + 0.5 * ps[1].lexical)
        return (p, s) if s.supported else None


def _overlap(claim: set[str], sentence: set[str]) -> float:
    return len(claim & sentence) / len(claim) if claim else 0.0


class Numbering:
    """Dense citation numbers 1..n, in order of first use, one per (passage, quoted span)."""

    def __init__(self) -> None:
        self.citations: list[Citation] = []
        self._numbers: dict[tuple[str, int, int], int] = {}

    def number(self, passage: Passage, start: int, end: int) -> int:
        """The number of the span [start, end) of `passage`'s text, giving a new one if needed."""
        key = (passage.chunk_id, start, end)
        if key not in self._numbers:
            self._numbers[key] = len(self.citations) + 1
            self.citations.append(cite(passage, start, end, len(self.citations) + 1))
        return self._numbers[key]


def cite(passage: Passage, start: int, end: int, number: int) -> Citation:
    """A citation of characters [start, end) of the passage, with offsets in the article."""
    return Citation(
        number=number,
        passage=passage,
        quote=passage.text[start:end],
        quote_start=passage.article_offset(start),
        quote_end=passage.article_offset(end),
    )


@dataclass
class CheckedSentence:
    """One answer sentence after the check: its final text, or None if it was removed."""

    text: str | None
    notes: list[str]
    skipped: bool = False  # matched the caller's `skip` test (e.g. the refusal sentinel)


class CitationChecker:
    """Checks generated sentences against the numbered sources and renumbers what holds."""

    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence
        self.numbering = Numbering()

    def check(self, sentence: str) -> CheckedSentence:
        """Keep the markers whose passage backs the sentence; drop the sentence if none does."""
        claim = strip_markers(sentence)
        numbers = list(dict.fromkeys(cited_numbers(sentence)))
        notes: list[str] = []
        if not claim:
            return CheckedSentence(None, notes)
        if not keyword_tokens(claim):  # "Here is what I found:" makes no claim to check
            return CheckedSentence(claim, notes)
        vector = self.evidence.vectors.embed([claim])[0]
        kept: list[int] = []
        for n in numbers:
            if not 1 <= n <= len(self.evidence.passages) or not self.evidence.units_of(n - 1):
                notes.append(f"dropped [{n}]: there is no source {n}")
                continue
            support = self.evidence.support(claim, n - 1, vector)
            if not support.supported:
                notes.append(
                    f"dropped [{n}]: source {n} does not support “{_short(claim)}” "
                    f"(similarity {support.semantic:.2f}, word overlap {support.lexical:.2f})"
                )
                continue
            kept.append(self._renumber(n - 1, support))
        if not kept:
            found = self.evidence.best_support(claim)
            if found is None:
                notes.append(f"removed unsupported sentence “{_short(claim)}”")
                return CheckedSentence(None, notes)
            if numbers:
                notes.append(f"cited source {found[0] + 1} for “{_short(claim)}” instead")
            kept.append(self._renumber(*found))
        markers = "".join(f"[{n}]" for n in dict.fromkeys(kept))
        return CheckedSentence(_with_markers(claim, markers), notes)

    def _renumber(self, passage: int, support: Support) -> int:
        unit = support.unit
        return self.numbering.number(self.evidence.passages[passage], unit.start, unit.end)


def _with_markers(claim: str, markers: str) -> str:
    """Put the markers before the sentence's final full stop: "... expand NATO [1]."."""
    match = re.search(r"[.!?…]+[\"'”’)\]]*$", claim)
    if match is None:
        return f"{claim} {markers}"
    return f"{claim[: match.start()]} {markers}{claim[match.start() :]}"


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_stream(
    pieces: Iterable[str],
    checker: CitationChecker,
    *,
    skip: Callable[[str], bool] = lambda sentence: False,
) -> Iterator[CheckedSentence]:
    """Checked sentences of a streamed answer, each as soon as it is complete; sentences that
    `skip` picks out come back unchecked, with `skipped` set."""
    stream = SentenceStream()

    def check(sentence: str) -> CheckedSentence:
        if skip(sentence):
            return CheckedSentence(None, [], skipped=True)
        return checker.check(sentence)

    for piece in pieces:
        for sentence in stream.feed(piece):
            yield check(sentence)
    for sentence in stream.finish():
        yield check(sentence)
