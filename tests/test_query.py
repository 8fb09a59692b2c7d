"""Question understanding: outlets, absolute and relative dates, parts (speakers: test_speakers)."""

from __future__ import annotations

from datetime import date

import pytest

from assistant.query import OutletMatcher, find_dates, parse_question

OUTLETS = OutletMatcher(
    [
        "The Verge",
        "TechCrunch",
        "The Age",
        "Fortune",
        "Sporting News",
        "CBSSports.com",
        "The Independent - Life and Style",
        "The Independent - Sports",
        "The Roar | Sports Writers Blog",
        "BBC News - Entertainment & Arts",
        "TASS",
    ]
)
REFERENCE = date(2023, 12, 20)  # a Wednesday


def outlets_in(question: str) -> tuple[str, ...]:
    return parse_question(question, outlets=OUTLETS, reference=REFERENCE).outlets


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What did The Verge report about Epic?", ("The Verge",)),
        ("what did the verge say about epic?", ("The Verge",)),
        ("Did the verge article mention Epic?", ("The Verge",)),
        ("Was Techcrunch first to report it?", ("TechCrunch",)),
        ("Was TechCrunch's story accurate?", ("TechCrunch",)),
        ("Did The Age report it before Fortune?", ("The Age", "Fortune")),
        (
            "Does the 'Sporting News' article agree with CBSSports.com?",
            ("Sporting News", "CBSSports.com"),
        ),
        ("What did The Roar | Sports Writers Blog say?", ("The Roar | Sports Writers Blog",)),
        ("What did The Roar write about the Wallabies?", ("The Roar | Sports Writers Blog",)),
        (
            "Did The Independent cover the final?",
            ("The Independent - Life and Style", "The Independent - Sports"),
        ),
        ("the BBC News - Entertainment & Arts piece", ("BBC News - Entertainment & Arts",)),
    ],
)
def test_outlets_are_matched_to_the_corpus_names(question: str, expected: tuple[str, ...]) -> None:
    assert outlets_in(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "Did she lose control of her privacy at the age of 16?",
        "Is the company on the verge of collapse?",
        "Who made a fortune from crypto?",
        "Was the independent review published?",
    ],
)
def test_ordinary_words_are_not_outlets(question: str) -> None:
    assert outlets_in(question) == ()


def span(question: str) -> list[tuple[str, str]]:
    return [
        (r.start.isoformat(), r.end.isoformat())
        for _, r in find_dates(question, reference=REFERENCE)
    ]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("in an article published on October 5, 2023?", [("2023-10-05", "2023-10-05")]),
        ("the report of 5 October 2023", [("2023-10-05", "2023-10-05")]),
        ("published on Oct. 5th, 2023", [("2023-10-05", "2023-10-05")]),
        ("the Polygon article published on 2023-10-16", [("2023-10-16", "2023-10-16")]),
        ("What happened in November 2023?", [("2023-11-01", "2023-11-30")]),
        ("news from October 5", [("2023-10-05", "2023-10-05")]),
        ("what was said in March?", [("2023-03-01", "2023-03-31")]),
        (
            "between October 1, 2023 and October 5, 2023",
            [("2023-10-01", "2023-10-05")],
        ),
        ("between September 26 and November 2, 2023", [("2023-09-26", "2023-11-02")]),
        ("before September 26, 2023", [("1900-01-01", "2023-09-25")]),
        ("after October 7, 2023", [("2023-10-08", "2999-12-31")]),
        ("What did they say about it in May?", [("2023-05-01", "2023-05-31")]),
    ],
)
def test_absolute_dates_and_ranges(question: str, expected: list[tuple[str, str]]) -> None:
    assert span(question) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What did Lavrov say yesterday?", [("2023-12-19", "2023-12-19")]),
        ("What happened today?", [("2023-12-20", "2023-12-20")]),
        ("What happened last week?", [("2023-12-11", "2023-12-17")]),
        ("What happened this week?", [("2023-12-18", "2023-12-20")]),
        ("any news in the past month?", [("2023-11-20", "2023-12-20")]),
        ("over the last 3 days", [("2023-12-17", "2023-12-20")]),
        ("What happened last month?", [("2023-11-01", "2023-11-30")]),
        ("two weeks ago", [("2023-12-03", "2023-12-09")]),
    ],
)
def test_relative_dates_resolve_against_the_reference_date(
    question: str, expected: list[tuple[str, str]]
) -> None:
    assert span(question) == expected


def test_may_as_a_verb_is_not_a_date() -> None:
    assert span("He may 5 times have said so, and may return.") == []


def test_parts_of_a_comparison_keep_their_own_outlets_and_dates() -> None:
    parsed = parse_question(
        "Did the Fortune article on October 4, 2023 claim that Alameda's practices were legal, "
        "while the TechCrunch article claims that Alameda misused FTX customer funds?",
        outlets=OUTLETS,
        reference=REFERENCE,
    )
    assert parsed.outlets == ("Fortune", "TechCrunch")
    assert [p.outlets for p in parsed.parts] == [("Fortune",), ("TechCrunch",)]
    assert [d.start for d in parsed.parts[0].dates] == [date(2023, 10, 4)]
    assert "Alameda's practices were legal" in parsed.parts[0].text
    assert "misused FTX customer funds" in parsed.parts[1].text
    assert "Fortune" not in parsed.topic and "October" not in parsed.topic
    assert "Alameda misused FTX customer funds" in parsed.topic


def test_a_simple_question_has_no_parts_and_keeps_its_words() -> None:
    parsed = parse_question("What did Lavrov say about NATO expansion?", outlets=OUTLETS)
    assert parsed.parts == ()
    assert parsed.topic == "What did Lavrov say about NATO expansion?"
    assert parsed.dates == ()


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("Which company, covered by both The Verge and TechCrunch, is cutting jobs?", True),
        ("Who is the individual facing trial, as reported by Fortune?", True),
        ("Considering the reports in Wired, which team won the final?", True),
        ("Does the TechCrunch article report a loss, while The Verge reports a win?", False),
        ("Was the article from The Age published before the one from The Guardian?", False),
        ("What did Lavrov say about NATO expansion?", False),  # a named speaker's words
    ],
)
def test_questions_that_ask_for_a_name(question: str, asks: bool) -> None:
    assert parse_question(question).asks_for_a_name is asks
