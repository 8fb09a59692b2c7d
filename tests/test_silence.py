"""Refusing when the archive is silent: an outlet it does not hold, a name it never mentions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from assistant.answer import REFUSAL
from assistant.query import OutletMatcher
from assistant.silence import (
    absent_entities,
    absent_topic_words,
    named_entities,
    named_outlets,
)
from index.keyword import ChunkRecord, KeywordIndex

if TYPE_CHECKING:
    from assistant.engine import Engine

SILENT_NOTE = "the archive is silent on part of the question"
# Outlets written as news archives name them: sections, taglines, domains.
OUTLETS = OutletMatcher(
    [
        "The Verge",
        "TechCrunch",
        "The New York Times",
        "BBC News - Technology",
        "Cnbc | World Business News Leader",
        "CBSSports.com",
        "FOX News - Lifestyle",
        "The Independent - Life and Style",
        "Live Science: The Most Interesting Articles",
        "Financial Times",
    ]
)


@pytest.mark.parametrize(
    "name",
    [
        "The Verge",
        "the verge",
        "Verge",
        "BBC",
        "BBC Sport",
        "BBC News",
        "CNBC",
        "CBS Sports",
        "Fox News",
        "The Independent",
        "Live Science",
        "The Financial Times",
        "NYT",
    ],
)
def test_an_outlet_the_archive_holds_is_held_however_named(name: str) -> None:
    assert OUTLETS.holds(name)


@pytest.mark.parametrize(
    "name", ["Bloomberg", "Reuters", "The Wall Street Journal", "Yahoo Finance", "The Times", "WSJ"]
)
def test_other_outlets_are_not_held(name: str) -> None:
    assert not OUTLETS.holds(name)


@pytest.mark.parametrize(
    ("question", "outlets"),
    [
        ("What did an article from The Financial Times say about tariffs?", ["Financial Times"]),
        ("According to a Bloomberg article, who won?", ["Bloomberg"]),
        ("Did The Verge and a Reuters report agree on the price?", ["The Verge", "Reuters"]),
        ("Do an article by Forbes and another by The Hindu agree?", ["Forbes", "The Hindu"]),
        ("Is the iPhone praised as reported by Save Bubble?", ["Save Bubble"]),
        ("What did The Wall Street Journal's first article say?", ["The Wall Street Journal"]),
        ("According to The Washington Post, who resigned?", ["The Washington Post"]),
        ("What did the Hollywood Reporter's coverage say?", ["Hollywood Reporter"]),
    ],
)
def test_outlets_are_read_from_how_questions_cite_them(question: str, outlets: list[str]) -> None:
    found = [m.value for m in named_outlets(question, OUTLETS)]
    assert [name for name in found if not OUTLETS.holds(name)] == [
        name for name in outlets if not OUTLETS.holds(name)
    ]
    assert set(outlets) <= {m.value for m in named_outlets(question, OUTLETS)} | {
        question[m.start : m.end] for m in OUTLETS.find(question)
    }


@pytest.mark.parametrize(
    "question",
    [
        "What did the World Bank report say about growth?",  # a report, no outlet beside it
        "According to Elon Musk, when will the car ship?",  # a person
        "According to Mozilla's study, what do users want?",
        "Does the TechCrunch article on the 'NBA Rookie of the Year Odds' agree?",  # a title
        "Did the TechCrunch report published on December 15 say so?",  # a date
        "What did Psaki say about the EU's analysis of the sanctions?",
    ],
)
def test_names_that_are_not_outlets_are_not_taken_for_outlets(question: str) -> None:
    assert [m.value for m in named_outlets(question, OUTLETS) if not OUTLETS.holds(m.value)] == []


def test_names_skip_words_capitalised_for_their_place_and_dates() -> None:
    question = "Considering what Did Psaki say on January 5 about Sygic's CEO, Ralf-Peter Schäfer?"
    assert [m.value for m in named_entities(question)] == [
        "Psaki",
        "Sygic",
        "CEO",
        "Ralf-Peter Schäfer",
    ]
    # A sentence's first word may be capitalised for its place only: it is left out.
    assert [m.value for m in named_entities("In 2022, did Apple say so? Tim Cook did.")] == [
        "Apple",
        "Cook",
    ]


def test_the_keyword_index_looks_up_words_without_a_scan(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "keyword")
    texts = ["Jen Psaki briefed reporters.", "Zelenskyy spoke to Biden.", "Psaki on Zelenskyy."]
    index.rebuild([ChunkRecord(f"c{i}", t, {}) for i, t in enumerate(texts)], "state")
    assert index.chunks_with("psaki").tolist() == [0, 2]
    assert index.chunks_with("musk").size == 0
    assert index.chunks_with_all("Psaki Zelenskyy").tolist() == [2]
    assert index.chunks_with_all("Psaki Musk").size == 0
    assert index.has_prefix("zelensk") and not index.has_prefix("zuck")


@pytest.mark.parametrize(
    ("question", "why"),
    [
        (
            "What did a Bloomberg article say about the Russian troops near Ukraine?",
            "The archive holds no articles from Bloomberg.",
        ),
        (
            "According to The Washington Post, what did Psaki say about sanctions on Russia?",
            "The archive holds no articles from The Washington Post.",
        ),
        (
            "Do a TASS article and a Reuters report agree on what Lavrov said about NATO?",
            "The archive holds no articles from Reuters.",
        ),
        ("What did Psaki say about Elon Musk?", "No article in the archive mentions Elon Musk."),
        (
            "What did the White House say about Mark Zuckerberg's testimony?",
            "No article in the archive mentions Mark Zuckerberg.",
        ),
        ("What did Psaki say about Kyrgyzstan?", "No article in the archive mentions Kyrgyzstan."),
        (
            "Did Lavrov comment on the Boston Celtics?",
            "No article in the archive mentions Boston Celtics.",
        ),
    ],
)
def test_a_question_the_archive_is_silent_on_is_refused_with_why(
    small_engine: Engine, question: str, why: str
) -> None:
    answer = small_engine.ask(question, use_llm=False)
    assert answer.refused
    assert answer.text == f"{REFUSAL} {why}"
    assert SILENT_NOTE in answer.notes
    assert answer.passages and not answer.citations  # the closest articles are listed


@pytest.mark.parametrize(
    "question",
    [
        "According to TASS, what did Lavrov say about security guarantees?",
        "What did the TASS article say about NATO expansion?",
        "What did Psaki say about Russia and Ukraine?",
        "What did The White House say about sanctions on Russia?",
        "What did President Biden say about Ukraine?",
    ],
)
def test_questions_naming_held_outlets_and_known_people_are_not_called_silent(
    small_engine: Engine, question: str
) -> None:
    answer = small_engine.ask(question, use_llm=False)
    assert SILENT_NOTE not in answer.notes


def test_an_outlet_named_as_what_a_speaker_answered_is_a_topic_not_a_source(
    small_engine: Engine,
) -> None:
    answer = small_engine.ask(
        "At the briefing, how did Psaki respond to a Bloomberg report about Kyrgyzstan?",
        use_llm=False,
    )
    assert answer.refused
    assert "holds no articles from" not in answer.text
    assert "Kyrgyzstan" in answer.text  # refused for what the archive lacks, the topic


def _index_of(tmp_path: Path, texts: list[str]) -> KeywordIndex:
    index = KeywordIndex(tmp_path / "keyword")
    index.rebuild([ChunkRecord(f"c{i}", t, {}) for i, t in enumerate(texts)], "state")
    return index


def test_names_in_hyphened_words_and_other_endings_are_not_called_absent(tmp_path: Path) -> None:
    texts = [
        "Karine Jean-Pierre briefed reporters on the Capitol.",
        "The President of the Gambia, Adama Barrow, was sworn in.",
    ]
    keyword = _index_of(tmp_path, texts)
    article_of = np.arange(len(texts))

    def absent(question: str) -> list[str]:
        return absent_entities(named_entities(question), keyword, article_of)

    assert absent("What did Karine Jean-Pierre say?") == []
    assert absent("What did Jean-Pierre say about the Capitol-anniversary speech?") == []
    assert absent("Where was Gambian President Adama Barrow sworn in?") == []
    assert absent("What did Jean-Pierre say about Kyrgyzstan-border talks?") == [
        "Kyrgyzstan-border"
    ]


def test_a_topic_word_no_article_holds_is_what_the_archive_lacks(
    tmp_path: Path, small_engine: Engine
) -> None:
    keyword = _index_of(tmp_path, ["Psaki spoke of the outbreak and negative tests."])

    def absent(asked: str) -> list[str]:
        return absent_topic_words(asked, "Psaki", keyword)

    assert absent("Psaki say about the monkeypox outbreak?") == ["monkeypox"]
    assert absent("Psaki say about negative-test regulations?") == ["regulations"]
    answer = small_engine.ask("What did Psaki say about the monkeypox vaccines?", use_llm=False)
    assert answer.refused and "mentions monkeypox" in answer.text


def test_the_archive_authors_are_read_from_each_distinct_byline(tmp_path: Path) -> None:
    """Read once per byline from the keyword index's columns (at 1M chunks, 0.1 s instead of
    7), the authors are those of every chunk's metadata."""
    import dataclasses

    from assistant.corpus_view import CorpusView
    from assistant.silence import archive_authors

    bylines = ["Jane Doe and John Roe", "Reuters", "Ann Lee, Bo Kim & Cy Young", "", None]
    records = [
        ChunkRecord(f"a{i}-{c}", f"Text {i} {c}.", {"article_id": f"a{i}", "author": byline})
        for i, byline in enumerate(bylines)
        for c in range(3)
    ]
    index = KeywordIndex(tmp_path / "keyword")
    index.rebuild(records, "state")
    view = dataclasses.replace(
        CorpusView.empty(), fingerprint="f", records=records, keyword_state=index.snapshot()
    )
    expected = {"jane doe", "john roe", "ann lee", "bo kim", "cy young"}
    assert archive_authors(view) == expected
    assert view.column("author") == [b for b in bylines for _ in range(3)]
    records_only = dataclasses.replace(view, fingerprint="g", keyword_state=None)
    assert archive_authors(records_only) == expected
