"""The short answer: what a question asks for, the span picked from the passages, and the
extractive answer that leads with it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from assistant.citations import MARKER
from assistant.short_answer import answer_kind, choice_options, find_short_answers

from .conftest import engine_over
from .factories import make_passage

if TYPE_CHECKING:
    from assistant.engine import Engine
    from index.embedding import Embedder


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did the ministry publish the report?", "date"),
        ("On what date was the treaty signed?", "date"),
        ("How many ships were stopped at the border?", "number"),
        ("How much did the city spend on the bridge?", "amount"),
        ("What price did the bank pay for the bonds?", "amount"),
        ("Who is the individual accused of fraud by prosecutors?", "person"),
        ("Which quarterback threw four touchdowns?", "person"),
        ("Which pop star was seen at the stadium?", "person"),
        ("Which company, reported by two outlets, cut its staff?", "organisation"),
        ("What is the name of the firm that bought the mine?", "organisation"),
        ("Which football team lost at home?", "organisation"),
        ("Where did the talks take place?", "place"),
        ("Which country closed its airspace?", "place"),
        ("Which film won the festival's prize?", "title"),
        ("Did the Gazette report on the strike before or after the Herald?", "choice"),
        ("Did the Gazette report on the strike before the Herald did?", ""),
        ("Why did the talks fail?", ""),
    ],
)
def test_the_kind_of_answer_a_question_asks_for(question: str, kind: str) -> None:
    assert answer_kind(question) == kind


def test_choice_options_are_the_two_words_around_or() -> None:
    assert choice_options("Was it reported before or after the vote?") == ("before", "after")
    assert choice_options("Did the board meet on Monday?") is None


def test_the_name_the_passages_agree_on_wins_over_one_named_once() -> None:
    passages = [
        make_passage(
            "Prosecutors said Mara Quill moved customer money to a trading firm. "
            "Quill said she did nothing wrong.",
            article_id="a",
            source="Gazette",
        ),
        make_passage(
            "The trial of Mara Quill opened on Tuesday, with Judge Ben Oyelaran presiding.",
            article_id="b",
            source="Herald",
        ),
        make_passage("Quill told the court that the exchange was solvent.", article_id="c"),
    ]
    question = "Who is the individual accused of moving customer money to a trading firm?"
    (found,) = find_short_answers(question, passages)
    assert found.text == "Mara Quill"
    assert found.kind == "person"
    assert found.passage.text[found.start : found.end] == "Mara Quill"
    assert found.sentence_start <= found.start < found.end <= found.sentence_end


def test_a_name_the_question_gives_is_not_the_answer() -> None:
    passages = [
        make_passage("Harbourline said Portmore Shipping had bought two tankers.", article_id="a"),
        make_passage("Portmore Shipping and Harbourline signed the deal.", article_id="b"),
    ]
    question = "Which company sold two tankers to Portmore Shipping?"
    (found,) = find_short_answers(question, passages)
    assert found.text == "Harbourline"


def test_a_company_question_passes_over_people_and_a_person_question_over_companies() -> None:
    passages = [
        make_passage(
            "Orbitel chief executive Dana Vick said Orbitel would cut 500 jobs.", article_id="a"
        ),
        make_passage("Orbitel is cutting jobs, Dana Vick told staff on Monday.", article_id="b"),
    ]
    (company,) = find_short_answers("Which company is cutting jobs?", passages)
    (person,) = find_short_answers("Who told staff that jobs would be cut?", passages)
    assert company.text == "Orbitel"
    assert person.text == "Dana Vick"


def test_dates_and_amounts_are_verbatim_spans_of_the_closest_sentence() -> None:
    text = (
        "The museum opened in 1998. The new wing will open on 17 June, the director said, "
        "and cost $26.3 million to build."
    )
    passages = [make_passage(text)]
    (day,) = find_short_answers("When will the new wing open?", passages)
    (cost,) = find_short_answers("How much did the new wing cost to build?", passages)
    assert day.text == "17 June"
    assert cost.text == "$26.3 million"
    assert text[cost.start : cost.end] == "$26.3 million"


def test_two_well_supported_values_that_disagree_are_both_given() -> None:
    passages = [
        make_passage("The summit will open on 17 June in Geneva.", article_id="a"),
        make_passage("Officials said the summit opens on 17 June.", article_id="b"),
        make_passage("The summit will open on 18 June, its organisers said.", article_id="c"),
        make_passage("Organisers now say the summit opens on 18 June.", article_id="d"),
    ]
    found = find_short_answers("When does the summit open?", passages)
    assert {f.text for f in found} == {"17 June", "18 June"}


def test_a_name_repeated_in_passing_loses_to_the_one_the_text_describes_as_asked() -> None:
    passages = [
        make_passage(
            "Norland will host the games in 2027, the committee said. Norland looks forward to "
            "working with Estavia, the 2026 games host, and Corvale, the 2028 games host.",
            article_id=article,
            source=source,
        )
        for article, source in (("a", "Wire"), ("b", "Gazette"), ("c", "Herald"))
    ] + [make_passage("Norland trade rose in March, Norland officials said.", article_id="d")]
    (host,) = find_short_answers("Which country hosts the games in 2026?", passages)
    (who,) = find_short_answers("Who hosts the games in 2028?", passages)
    assert host.text == "Estavia"
    assert who.text == "Corvale"  # "who" asks for a person, but the text says Corvale hosts


def test_adjectives_and_sentence_openers_are_not_names_and_a_name_may_hold_a_number() -> None:
    text = (
        "Yesterday, Russian officials met. The Treasury moved against Russian banks. "
        "The President directed sanctions on Baltic Line 2 AG and its officers. "
        "He said yesterday that more would follow."
    )
    (company,) = find_short_answers(
        "Which company did the President direct sanctions on?", [make_passage(text)]
    )
    assert company.text == "Baltic Line 2 AG"


def test_the_questions_own_words_before_a_name_mark_it_and_a_name_it_gives_is_not_it() -> None:
    text = (
        "Today, the families of the Brookfield Harbour Disaster won a settlement with the ferry "
        "company Calloway. Its parent company Vantor said little."
    )
    (found,) = find_short_answers(
        "Which ferry company reached a settlement with families of the Brookfield Harbour victims?",
        [make_passage(text)],
    )
    assert found.text == "Calloway"


def test_a_date_belongs_to_the_event_of_its_own_clause_and_a_repeat_counts_once() -> None:
    replies = (
        "On 26 January, the alliance sent its written replies to the proposals on security, "
        "which the ministry requires from the alliance."
    )
    text = (
        f"{replies} The ministry said its proposals, handed over to the alliance on 15 December, "
        f"were not excessive. {replies}"
    )
    (day,) = find_short_answers(
        "On what date did the ministry hand its security proposals to the alliance?",
        [make_passage(text)],
    )
    assert day.text == "15 December"


def test_no_short_answer_for_a_yes_no_question_or_nothing_of_the_kind() -> None:
    passages = [make_passage("The talks went on late into the night.")]
    assert find_short_answers("Did the talks go on late?", passages) == []
    assert find_short_answers("How much did the talks cost?", passages) == []


@pytest.fixture(scope="module")
def name_engine(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Engine:
    bodies = [
        (
            "Exchange founder charged",
            "Prosecutors charged Mara Quill, the founder of the Brightcoin exchange, with fraud. "
            "Quill is accused of moving customer deposits to a trading firm she controlled.",
            "Gazette",
        ),
        (
            "Quill trial opens",
            "The fraud trial of Mara Quill opened in New York. Quill has pleaded not guilty to "
            "charges that she moved customer deposits to her trading firm.",
            "Herald",
        ),
        (
            "Harbour reopens",
            "The harbour reopened after the storm, port officials said on Monday.",
            "Gazette",
        ),
    ]
    articles = [
        {"title": t, "body": b, "source": s, "published_at": f"2023-10-0{i + 1}", "url": f"u{i}"}
        for i, (t, b, s) in enumerate(bodies)
    ]
    return engine_over(tmp_path_factory.mktemp("names"), articles, embedder)


def test_the_answer_starts_with_the_short_answer_cited_to_a_passage_holding_it(
    name_engine: Engine,
) -> None:
    question = "Who is the individual accused of moving customer deposits to a trading firm?"
    deltas = []
    answer = None
    for event in name_engine.ask_stream(question, use_llm=False):
        if event.kind == "delta":
            deltas.append(event.text)
        else:
            answer = event.answer
    assert answer is not None and not answer.refused
    short = answer.short_answer
    assert short is not None and short.text == "Mara Quill" and short.kind == "person"
    assert answer.text.startswith(f"Mara Quill [{short.citation}].")
    assert "".join(deltas) == answer.text
    citation = answer.citations[short.citation - 1]
    assert short.text in citation.quote
    assert citation.quote_start <= short.quote_start < short.quote_end <= citation.quote_end
    assert {int(m.group(1)) for m in MARKER.finditer(answer.text)} <= {
        c.number for c in answer.citations
    }
    assert answer.as_dict()["short_answer"]["text"] == "Mara Quill"


def test_an_answer_to_a_question_without_a_short_answer_has_none(name_engine: Engine) -> None:
    answer = name_engine.ask("Why was the harbour closed and then reopened?", use_llm=False)
    assert answer.short_answers == []
    assert not Path(answer.text).name.startswith("The articles differ")


def test_a_place_question_passes_over_a_person_named_with_a_title() -> None:
    text = (
        "Yesterday, President Joseph R. Biden made the county eligible for federal aid after "
        "the fires. Federal aid is available in Boulder County."
    )
    (county,) = find_short_answers(
        "Which Colorado county was made eligible for federal aid?", [make_passage(text)]
    )
    assert county.text == "Boulder County"
