"""What every front end (command line, web page, HTTP API) reads from its callers the same way:
the filters, the bounds on a question, its history and k, where the static files are, and what
of an answer may be sent back (only http(s) URLs)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from assistant.answer import Answer, Citation
from assistant.retrieve import Filters, Passage
from index.articles import parse_date
from index.errors import NewsAssistantError

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

MAX_QUESTION = 2000  # characters of a question
MAX_TURN = 20_000  # characters of one earlier message of a conversation
MAX_TURNS = 40  # earlier messages of a conversation
MIN_K = 1  # passages to search or answer from
MAX_K = 50
MAX_SEARCH_K = 100  # the command line's `search` may list more passages than it answers from


def clip_question(question: str) -> str:
    """The question cut to MAX_QUESTION characters, for front ends that cut rather than refuse."""
    return question[:MAX_QUESTION]


def checked_question(question: object) -> str:
    """The question if the API would take it; ValueError("question: …") saying what is wrong."""
    if not isinstance(question, str):
        raise ValueError("question: send the question as a string")
    if not question.strip():
        raise ValueError("question: the question is empty")
    if len(question) > MAX_QUESTION:
        raise ValueError(
            f"question: {len(question)} characters; shorten it to at most {MAX_QUESTION}"
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\ud800") parses from JSON but cannot be written back out.
        raise ValueError("question: not valid Unicode text") from None
    return question


def checked_k(k: object) -> int | None:
    """k if it is within MIN_K..MAX_K, None for 0 or None (the configured default); else
    ValueError("k: …"). A bool is not a number here, nor is "5"."""
    if k is None or (type(k) is int and k == 0):
        return None
    if type(k) is not int or not MIN_K <= k <= MAX_K:
        raise ValueError(f"k: send a whole number from {MIN_K} to {MAX_K} (0 for the default)")
    return k


def _day(value: str | date | None) -> str | None:
    if isinstance(value, str):
        value = value.strip()
    return parse_date(value) or None if value else None


def parse_filters(
    date_from: str | date | None, date_to: str | date | None, outlets: Iterable[str] | None
) -> Filters | None:
    """Filters from an inclusive date range (ISO or written dates) and outlet names; None when
    they restrict nothing. Raises ValueError("date filter: …") for a date it cannot read and
    ValueError("outlets: …") for outlets that are not a list of names."""
    if isinstance(outlets, str) or not all(isinstance(o, str) for o in outlets or ()):
        raise ValueError('outlets: send a list of outlet names, e.g. ["TASS"]')
    try:
        found = Filters(
            date_from=_day(date_from),
            date_to=_day(date_to),
            outlets=tuple(o for o in outlets or () if o),
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"date filter: {error}") from error
    return found or None


def safe_url(url: str | None) -> str:
    """`url` if it is an absolute http(s) URL, else "": nothing else (javascript:, data:,
    relative paths) is sent to a client or made a link."""
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 host)
        return ""
    return text if parts.scheme in ("http", "https") and parts.netloc else ""


def passage_json(passage: Passage) -> dict[str, Any]:
    """A passage as it is sent to clients (its URLs through `safe_url`)."""
    return {
        **passage.as_dict(),
        "url": safe_url(passage.url),
        "also_published_by": also_published_json(passage),
    }


def also_published_json(passage: Passage) -> list[dict[str, str]]:
    """The passage's syndicated copies as sent to clients (their URLs through `safe_url`)."""
    return [{**c, "url": safe_url(c.get("url", ""))} for c in passage.also_published_by]


def citation_json(citation: Citation) -> dict[str, Any]:
    """A citation as it is sent to clients (its URLs through `safe_url`)."""
    return {
        **citation.as_dict(),
        "url": safe_url(citation.passage.url),
        "also_published_by": also_published_json(citation.passage),
    }


def answer_json(answer: Answer) -> dict[str, Any]:
    """An answer as it is sent to clients: `Answer.as_dict` with every URL through `safe_url`."""
    return {
        **answer.as_dict(),
        "citations": [citation_json(c) for c in answer.citations],
        "passages": [passage_json(p) for p in answer.passages],
    }


@contextmanager
def user_errors(error_type: type[Exception], doing: str, **options: Any) -> Iterator[None]:
    """Errors raised inside as `error_type(message, **options)`, for front ends that must not
    send Python errors to their callers: a caller's own mistake (ValueError) or the service's
    known failure (NewsAssistantError) in its own words, anything else as a pointer to the
    server log (where its traceback goes)."""
    try:
        yield
    except error_type:
        raise
    except (ValueError, NewsAssistantError) as error:
        raise error_type(str(error), **options) from None
    except Exception:
        log.exception("%s failed", doing)
        raise error_type(f"{doing} failed; the server log has the details", **options) from None
