"""Refusing questions about dates the archive does not cover, and saying what it covers."""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

import pytest

from assistant.answer import REFUSAL, archive_span
from assistant.query import DateRange, all_outside, mentions_time

if TYPE_CHECKING:
    from assistant.engine import Engine

OUTSIDE_NOTE = "the question asks about dates the archive does not cover"
# The small corpus is demo articles of January and February 2022 and the TASS seed.
SPAN = re.compile(r"The archive covers \d{1,2} January to \d{1,2} (?:January|February) 2022\.$")


def _range(engine: Engine) -> str:
    summary = engine.corpus_summary()
    assert summary.first_date and summary.last_date
    first, last = (date.fromisoformat(d[:10]) for d in (summary.first_date, summary.last_date))
    return archive_span(first, last)


def test_archive_span_names_the_days_and_the_years_only_where_needed() -> None:
    assert (
        archive_span(date(2022, 1, 1), date(2022, 2, 28))
        == "The archive covers 1 January to 28 February 2022."
    )
    assert (
        archive_span(date(2023, 9, 26), date(2024, 1, 2))
        == "The archive covers 26 September 2023 to 2 January 2024."
    )


@pytest.mark.parametrize(
    ("ranges", "outside"),
    [
        ([], False),
        ([DateRange(date(2019, 1, 1), date(2019, 12, 31), "2019")], True),
        ([DateRange(date(2022, 3, 1), date(2022, 3, 31), "March 2022")], True),
        ([DateRange(date(2021, 7, 1), date(2021, 7, 31), "July")], False),  # a guessed year
        ([DateRange(date(2021, 1, 1), date(2021, 12, 31), "last year")], False),
        (
            [
                DateRange(
                    date(2021, 12, 1), date(2022, 1, 1), "from December 2021 to 1 January 2022"
                )
            ],
            False,
        ),
        ([DateRange(date(2022, 2, 28), date(2999, 12, 31), "since 27 February 2022")], False),
        (
            [
                DateRange(date(2019, 1, 1), date(2019, 12, 31), "2019"),
                DateRange(date(2022, 2, 1), date(2022, 2, 28), "February 2022"),
            ],
            False,  # one of its dates is covered: there is something to answer from
        ),
    ],
)
def test_all_outside_needs_every_range_clear_of_the_archive(
    ranges: list[DateRange], outside: bool
) -> None:
    assert all_outside(ranges, date(2022, 1, 1), date(2022, 2, 28)) is outside


@pytest.mark.parametrize(
    ("text", "named", "mentions"),
    [
        (
            "Google paid $26.3 billion in 2021.",
            DateRange(date(2021, 1, 1), date(2021, 12, 31), "2021"),
            True,
        ),
        (
            "Google paid $26.3 billion.",
            DateRange(date(2021, 1, 1), date(2021, 12, 31), "2021"),
            False,
        ),
        (
            "It was wiser in 2021.",
            DateRange(date(1900, 1, 1), date(2020, 12, 31), "before 2021"),
            False,
        ),
        (
            "He spoke in May 2019.",
            DateRange(date(2019, 3, 1), date(2019, 3, 31), "March 2019"),
            False,
        ),
        (
            "I proclaim March 2022 as",
            DateRange(date(2022, 3, 1), date(2022, 3, 31), "March 2022"),
            True,
        ),
    ],
)
def test_mentions_time_needs_a_year_of_the_range_and_its_months(
    text: str, named: DateRange, mentions: bool
) -> None:
    assert mentions_time(text, named) is mentions


@pytest.mark.parametrize(
    "question",
    [
        "What did the White House say about COVID-19 vaccines in 2019?",
        "What did Lavrov say about NATO expansion in 2021?",
        "What did the President say about Ukraine in March 2023?",
        "What did the administration say about infrastructure in 2023?",
        "What did the White House say about vaccines on 4 July 2019?",
        "What did the President say about Ukraine before 2020?",
    ],
)
def test_question_about_dates_outside_the_archive_is_refused_with_its_range(
    small_engine: Engine, question: str
) -> None:
    answer = small_engine.ask(question)
    assert answer.refused
    assert answer.text == f"{REFUSAL} {_range(small_engine)}"
    assert SPAN.search(answer.text)
    assert answer.citations == []
    assert OUTSIDE_NOTE in answer.notes
    assert answer.closest_articles()  # a refusal still points to the nearest articles


@pytest.mark.parametrize(
    "question",
    [
        "What did Lavrov say about NATO expansion in January 2022?",
        "What did Lavrov say about security guarantees on 28 January 2022?",
        "What did the White House say about Ukraine in February 2022?",
        "What did Lavrov say about NATO expansion in 2022?",
    ],
)
def test_question_about_dates_inside_the_archive_is_not_refused_for_them(
    small_engine: Engine, question: str
) -> None:
    answer = small_engine.ask(question)
    assert OUTSIDE_NOTE not in answer.notes
    assert "The archive covers" not in answer.text
    if answer.refused:  # only ever for the evidence, never for the dates
        assert answer.text == REFUSAL


def test_answer_that_names_the_dates_asked_about_is_kept(small_engine: Engine) -> None:
    # March 2022 is after the archive, but its articles announce the 1 March 2022 address.
    answer = small_engine.ask("What did the President announce in March 2022?")
    assert not answer.refused and "March 1, 2022" in answer.text
    assert OUTSIDE_NOTE not in answer.notes


def test_question_about_lavrov_in_january_2022_is_answered(small_engine: Engine) -> None:
    answer = small_engine.ask("What did Lavrov say about NATO expansion in January 2022?")
    assert not answer.refused and answer.citations


def test_question_without_dates_is_unaffected(small_engine: Engine) -> None:
    answered = small_engine.ask("What did Lavrov say about NATO expansion?")
    assert not answered.refused and answered.citations
    assert OUTSIDE_NOTE not in answered.notes
    refused = small_engine.ask("Who won the 2018 World Cup?")  # a year, but not a time asked
    assert refused.refused and refused.text.startswith(REFUSAL)  # the World Cup is never named
    assert OUTSIDE_NOTE not in refused.notes


def test_range_refusal_streams_the_whole_text(small_engine: Engine) -> None:
    events = list(small_engine.ask_stream("What did the President say in 2019?"))
    final = events[-1].answer
    assert final is not None and final.refused
    assert "".join(e.text for e in events if e.kind == "delta") == final.text
    assert final.text.startswith(REFUSAL + " The archive covers ")


def test_archive_range_is_not_read_again_per_question(
    small_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_engine.ask("What did the President say in 2019?")  # the range is known from here on
    calls: list[Any] = []
    summary = small_engine.index.summary

    def counted() -> Any:
        calls.append(1)
        return summary()

    monkeypatch.setattr(small_engine.index, "summary", counted)
    first = small_engine.ask("What did the President say in 2019?")
    second = small_engine.ask("What did Lavrov say about NATO expansion in January 2022?")
    assert first.refused and OUTSIDE_NOTE not in second.notes
    assert calls == []
