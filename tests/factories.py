"""Values the tests build by hand, with plain defaults for whatever a test does not care about."""

from __future__ import annotations

from dataclasses import replace
from typing import TypedDict, Unpack

from assistant.retrieve import Passage

PASSAGE_TEXT = "Lavrov said the talks would go on."


class PassageFields(TypedDict, total=False):
    """The fields of a `Passage` but its text, each one optional."""

    chunk_id: str
    article_id: str
    title: str
    source: str
    published: str
    url: str
    author: str
    start: int
    end: int
    score: float
    signals: dict[str, float]
    spans: tuple[tuple[int, int], ...]


def make_passage(text: str = PASSAGE_TEXT, **fields: Unpack[PassageFields]) -> Passage:
    """A passage of `text`, from article "a" ("A title", Wire, 2022-01-28), scored 1.0.

    `fields` replace the defaults. Unless given, `article_id` is `chunk_id` up to its last "-",
    `chunk_id` is `{article_id}-0000`, and `end` is `start + len(text)`."""
    chunk_id = fields.get("chunk_id", "")
    article_id = fields.get("article_id") or chunk_id.rpartition("-")[0] or chunk_id or "a"
    start = fields.get("start", 0)
    passage = Passage(
        chunk_id=chunk_id or f"{article_id}-0000",
        article_id=article_id,
        text=text,
        title="A title",
        source="Wire",
        published="2022-01-28",
        url="",
        author="",
        start=start,
        end=start + len(text),
        score=1.0,
    )
    return replace(passage, **fields)
