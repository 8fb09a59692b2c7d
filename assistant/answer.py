"""Answers with citations: the records the UI, the API and the evaluation share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from assistant.retrieve import Passage

REFUSAL = "The articles I have do not answer this."


@dataclass(frozen=True, slots=True)
class Citation:
    """What one [n] marker points to: a passage and the exact span of the article it quotes."""

    number: int
    passage: Passage
    quote: str
    quote_start: int  # character offsets in the article body
    quote_end: int

    @property
    def passage_offset(self) -> int:
        """Where the quote starts in the passage's text (an excerpt may skip parts)."""
        return self.passage.text_offset(self.quote_start)

    def as_dict(self) -> dict[str, Any]:
        p = self.passage
        return {
            "number": self.number,
            "article_id": p.article_id,
            "chunk_id": p.chunk_id,
            "title": p.title,
            "source": p.source,
            "published": p.published,
            "url": p.url,
            "author": p.author,
            "quote": self.quote,
            "quote_start": self.quote_start,
            "quote_end": self.quote_end,
            "passage": p.text,
            "passage_start": p.start,
            "passage_end": p.end,
            "passage_spans": [list(span) for span in p.spans] or [[p.start, p.end]],
            "quote_offset": self.passage_offset,
        }


@dataclass(frozen=True, slots=True)
class ShortAnswer:
    """The answer in a few words, first in the answer: a verbatim span of a cited sentence
    ("17 June", "Sam Bankman-Fried", "$26.3 billion") and the [n] it comes from.

    kind: what the question asked for: "date", "number", "amount", "person", "organisation",
    "place", "title" or "choice" (one of the options a question offers)."""

    text: str
    citation: int  # the [n] of the citation whose article holds the span
    quote_start: int  # character offsets of `text` in the article body
    quote_end: int
    kind: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citation": self.citation,
            "quote_start": self.quote_start,
            "quote_end": self.quote_end,
            "kind": self.kind,
        }


@dataclass
class Answer:
    """An answer whose every [n] is in `citations`; `refused` when the corpus does not answer.

    When refused, `text` starts with REFUSAL (then, for a question about dates the archive
    does not cover, its date range) and `passages` are the closest articles found."""

    question: str
    text: str
    citations: list[Citation]
    refused: bool
    mode: str  # "extractive" or "llm:<model>"
    standalone_question: str = ""
    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    evidence_score: float = 0.0  # how well the best sentence found matches the question
    notes: list[str] = field(default_factory=list)  # what the citation check changed, fallbacks
    # The short answer when the question asks for a date, number, person, place ... (else None);
    # more than one when the passages disagree (each is given, the first leads).
    short_answers: list[ShortAnswer] = field(default_factory=list)
    # "yes" or "no" only where it follows mechanically from the cited evidence (two dates
    # compared, each part found or not); "" otherwise, the evidence laid out instead.
    verdict: str = ""

    @property
    def short_answer(self) -> ShortAnswer | None:
        return self.short_answers[0] if self.short_answers else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question or self.question,
            "answer": self.text,
            "refused": self.refused,
            "mode": self.mode,
            "citations": [c.as_dict() for c in self.citations],
            "passages": [p.as_dict() for p in self.passages],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "evidence_score": round(self.evidence_score, 4),
            "notes": self.notes,
            "short_answer": self.short_answer.as_dict() if self.short_answer else None,
            "short_answers": [s.as_dict() for s in self.short_answers],
            "verdict": self.verdict or None,
        }

    def closest_articles(self, limit: int = 5) -> list[Passage]:
        """The passages, one per article, best first (what a refusal points the reader to)."""
        seen: dict[str, Passage] = {}
        for passage in self.passages:
            seen.setdefault(passage.article_id or passage.chunk_id, passage)
        return list(seen.values())[:limit]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One step of a streamed answer: a piece of text (never half a [n] marker), then the whole."""

    kind: Literal["delta", "answer"]
    text: str = ""
    answer: Answer | None = None


def format_date(iso: str) -> str:
    """ "2022-01-28" -> "28 Jan 2022"; anything else as it is."""
    try:
        day = date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    return f"{day.day} {day:%b} {day.year}"


def archive_span(first: date, last: date) -> str:
    """ "The archive covers 1 January to 28 February 2022." for the days first to last."""
    start = f"{first.day} {first:%B}" + ("" if first.year == last.year else f" {first.year}")
    return f"The archive covers {start} to {last.day} {last:%B} {last.year}."
