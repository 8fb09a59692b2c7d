"""What every front end (command line, web page, HTTP API) reads from its callers the same way:
the filters, the bounds on a question, its history and k, and where the static files are."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from assistant.retrieve import Filters
from index.articles import parse_date

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


def _day(value: str | date | None) -> str | None:
    if isinstance(value, str):
        value = value.strip()
    return parse_date(value) or None if value else None


def parse_filters(
    date_from: str | date | None, date_to: str | date | None, outlets: Iterable[str] | None
) -> Filters | None:
    """Filters from an inclusive date range (ISO or written dates) and outlet names; None when
    they restrict nothing. Raises ValueError("date filter: …") for a date it cannot read."""
    try:
        found = Filters(
            date_from=_day(date_from),
            date_to=_day(date_to),
            outlets=tuple(o for o in outlets or () if o),
        )
    except ValueError as error:
        raise ValueError(f"date filter: {error}") from error
    return found or None
