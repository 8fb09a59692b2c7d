"""Answers with citations: the records the UI, the API and the evaluation share."""

from __future__ import annotations

from dataclasses import dataclass, field
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
        }


@dataclass
class Answer:
    """An answer whose every [n] is in `citations`; `refused` when the corpus does not answer."""

    question: str
    text: str
    citations: list[Citation]
    refused: bool
    mode: str  # "extractive" or "llm:<model>"
    standalone_question: str = ""
    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

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
        }


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One step of a streamed answer: a piece of text (never half a [n] marker), then the whole."""

    kind: Literal["delta", "answer"]
    text: str = ""
    answer: Answer | None = None
