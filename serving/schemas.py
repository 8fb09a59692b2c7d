"""The JSON API's request and response models, read strictly: types as JSON has them."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from assistant.retrieve import Filters
from index.web_pages import is_url
from serving.inputs import MAX_K, MAX_QUESTION, MAX_TURN, MAX_TURNS, MIN_K, parse_filters

MODEL_ID = "news-assistant"

# Types as JSON has them, unknown fields refused: pydantic's default would take "5" or true for
# k = 1 and quietly drop a misspelt field.
_STRICT = ConfigDict(extra="forbid", strict=True)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: Any) -> Any:
    """A YYYY-MM-DD string as a date; not epoch numbers or other forms pydantic would read."""
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
        raise ValueError("use a date as YYYY-MM-DD")
    return date.fromisoformat(value)


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


class Turn(BaseModel):
    """One earlier message of the conversation."""

    model_config = _STRICT

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN)


class FilterFields(BaseModel):
    """Restrict the articles searched: an inclusive date range and outlet names."""

    model_config = _STRICT

    date_from: IsoDay | None = Field(None, description="Only articles on or after (YYYY-MM-DD).")
    date_to: IsoDay | None = Field(None, description="Only articles on or before (YYYY-MM-DD).")
    outlets: list[str] = Field(default_factory=list, max_length=100)

    def filters(self) -> Filters | None:
        return parse_filters(self.date_from, self.date_to, self.outlets)


class SearchRequest(FilterFields):
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    k: int | None = Field(
        None, ge=MIN_K, le=MAX_K, description="How many passages (default: top_k)."
    )
    collection: str | None = Field(
        None,
        max_length=63,
        description="Which archive (one of /api/health's `collections`); default: the server's.",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is empty")
        return value


class AskRequest(SearchRequest):
    history: list[Turn] = Field(default_factory=list, max_length=MAX_TURNS)
    use_llm: bool | None = Field(None, description="Force (true) or skip (false) the LLM.")


class CopyOut(BaseModel):
    source: str
    title: str
    url: str = Field(description="http(s) only; empty otherwise.")
    published: str


class PassageOut(BaseModel):
    chunk_id: str
    article_id: str
    text: str
    title: str
    source: str
    published: str
    url: str
    author: str
    start: int
    end: int
    score: float
    signals: dict[str, float]
    also_published_by: list[CopyOut] = Field(
        default_factory=list,
        description="Syndicated copies of the article, merged into it at ingest.",
    )


class CitationOut(BaseModel):
    number: int
    article_id: str
    chunk_id: str
    title: str
    source: str
    published: str
    url: str
    author: str
    quote: str
    quote_start: int
    quote_end: int
    passage: str
    passage_start: int
    passage_end: int
    passage_spans: list[list[int]] = Field(
        description="The article ranges the passage is made of, joined by a blank line."
    )
    quote_offset: int = Field(description="Where the quote starts in `passage`.")
    also_published_by: list[CopyOut] = Field(
        default_factory=list,
        description="Syndicated copies of the article, merged into it at ingest.",
    )


class ShortAnswerOut(BaseModel):
    text: str = Field(description="The answer in a few words, verbatim from a cited sentence.")
    citation: int = Field(description="The [n] of the citation whose article holds it.")
    quote_start: int = Field(description="Where it starts in the article body (characters).")
    quote_end: int
    kind: str = Field(
        description="What was asked for: date, number, amount, person, organisation, place, "
        "title or choice."
    )


class AskResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    question: str
    standalone_question: str
    answer: str
    refused: bool
    mode: str
    citations: list[CitationOut]
    passages: list[PassageOut]
    timings: dict[str, float]
    evidence_score: float = 0.0
    notes: list[str] = Field(default_factory=list)
    short_answer: ShortAnswerOut | None = Field(
        default=None,
        description="The short answer the answer begins with, when the question asks for a "
        "date, number, person, place ...; null otherwise.",
    )
    short_answers: list[ShortAnswerOut] = Field(
        default_factory=list,
        description="Every short answer given: more than one when the articles disagree.",
    )
    verdict: str | None = Field(
        default=None,
        description='"yes" or "no" where it follows mechanically from the cited evidence '
        "(dates compared, each part found or not); null otherwise.",
    )


class SearchResponse(BaseModel):
    question: str
    passages: list[PassageOut]
    timings: dict[str, float]


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    articles: int
    chunks: int
    outlets: int
    mode: str
    message: str = ""
    collections: list[str] = Field(
        default_factory=list,
        description="The archives `collection` may name, the default (described above) first.",
    )
    last_updated: str | None = Field(
        None,
        description="When this server last brought the archive up to date (a feed poll or an "
        "ingest that read everything), ISO 8601 UTC; null: not since it started.",
    )


class TextPart(BaseModel):
    """One part of a message's content; text is the only kind read."""

    model_config = _STRICT

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    # OpenAI messages may carry more (name, tool_calls, ...): accepted and ignored.
    model_config = ConfigDict(extra="allow", strict=True)

    role: str
    content: str | list[TextPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, value: Any) -> Any:
        # One clear message instead of pydantic's error for each branch of the union.
        parts = value if isinstance(value, list) else [{"type": "text", "text": value}]
        if value is not None and not all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in parts
        ):
            raise ValueError(
                'send a string or a list of {"type": "text", "text": "..."} parts; '
                "images, audio and files are not read"
            )
        return value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The OpenAI chat request; sampling fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_TURNS + 1)
    stream: bool = False
    k: int | None = Field(None, ge=MIN_K, le=MAX_K)
    filters: FilterFields | None = None
    use_llm: bool | None = None


MAX_INGEST_ARTICLES = 10_000
MAX_INGEST_URLS = 100


class IngestFile(BaseModel):
    """A file as `ingest` would read it from disk (what the command line sends a running app)."""

    model_config = _STRICT

    name: str = Field(
        min_length=1, max_length=1000, description="Its name; the suffix gives the format."
    )
    content_base64: str = Field(description="The file's bytes, base64-encoded.")
    first_line: int = Field(
        1, ge=1, description="The line of the original file this part starts at (for reports)."
    )


class IngestRequest(BaseModel):
    """Articles to add, as the JSONL loader reads them, files, and feed or page URLs to fetch."""

    model_config = _STRICT

    articles: list[Any] = Field(
        default_factory=list,
        max_length=MAX_INGEST_ARTICLES,
        description="Records with the JSONL loader's fields (title, body or text, source, "
        "published, url, author, category, id; the usual aliases too).",
    )
    urls: list[str] = Field(
        default_factory=list,
        max_length=MAX_INGEST_URLS,
        description="http(s) URLs of RSS/Atom feeds or article pages, fetched by the app.",
    )
    files: list[IngestFile] = Field(
        default_factory=list,
        max_length=MAX_INGEST_ARTICLES,
        description="Files in any format `ingest` reads; bad records are reported by name:line.",
    )
    format: Literal["jsonl", "json", "csv", "txt", "md", "html"] | None = Field(
        None, description="Read every file as this format, as `ingest --format`."
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="Field to key mapping, as `ingest --field NAME=KEY`."
    )
    collection: str | None = Field(
        None, max_length=63, description="Which archive to add to; default: the server's."
    )

    @field_validator("urls")
    @classmethod
    def _only_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not is_url(url):  # anything else would be read as a path on the server
                raise ValueError(f"{url[:200]!r} is not an http(s) URL")
        return urls


class IngestIssue(BaseModel):
    """One bad record or page: where (articles[i].field, name:line.field, or the URL) and why."""

    location: str = Field(description="Where, in one string: `articles[3].published`.")
    source: str = Field(description="`articles`, a file's name, or a URL.")
    line: int | None = Field(None, description="The file's line, or 1 + the article's index.")
    article: int | None = Field(None, description="Index in `articles`, when it is one of them.")
    field: str | None
    reason: str


class IngestResponse(BaseModel):
    """What the ingest did, as `news-assistant ingest --json` reports it."""

    added: int
    updated: int
    repaired: int
    unchanged: int
    duplicates: int
    syndicated: int
    skipped: int
    chunks_written: int
    seconds: float
    issues: list[IngestIssue]
    notes: list[str]
    collection: str
