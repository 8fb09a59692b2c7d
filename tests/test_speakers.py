"""Who said what: speech verbs, quote attribution, words given to a person, speakers asked about."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.answer import Answer
from assistant.citations import Unit, passage_units
from assistant.engine import Engine
from assistant.extractive import Attribution, Candidate, attribute
from assistant.llm import render_sources
from assistant.query import OutletMatcher, parse_question
from assistant.replies import cut_off, reply_quote
from assistant.retrieve import Passage
from assistant.speakers import (
    SPEECH_VERB_USES,
    SPEECH_VERBS,
    asks_what_was_said,
    attributed_to,
    label_name,
    name_tokens,
    passage_turns,
    quoted_in_answer,
    resolve_label,
    same_speaker,
    speaking_pattern,
    strip_titles,
    transcript_label,
    transcript_turns,
    turn_at,
    verbs_for,
)
from index.embedding import Embedder
from tests.conftest import engine_over
from tests.factories import make_passage

OUTLETS = OutletMatcher(["The Verge", "TechCrunch", "TASS"])


def test_every_speech_verb_counts_somewhere_known_and_every_place_has_verbs() -> None:
    for verb, uses in SPEECH_VERBS.items():
        assert uses.split() and set(uses.split()) <= SPEECH_VERB_USES, verb
        re.compile(verb)
    for use in SPEECH_VERB_USES:
        assert verbs_for(use)
    with pytest.raises(ValueError, match="unknown use"):
        verbs_for("quotes")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What did Lavrov say about NATO expansion?", ("Lavrov",)),
        ("What did Sergey Lavrov say about NATO?", ("Sergey Lavrov",)),
        ("According to Antony Blinken, what is next?", ("Antony Blinken",)),
        ("Did Sam Altman claim the board lied?", ("Sam Altman",)),
        ("What were Biden's remarks on Ukraine?", ("Biden",)),
        ("Biden said what about the economy?", ("Biden",)),
        ("According to TechCrunch, who was fired?", ()),
        ("What did the article say about NATO?", ()),
        ("How did Psaki respond to questions about the tests?", ("Psaki",)),
        ("At the February 11 briefing, how did Jake Sullivan answer that?", ("Jake Sullivan",)),
    ],
)
def test_speakers_whose_words_are_asked_for(question: str, expected: tuple[str, ...]) -> None:
    assert parse_question(question, outlets=OUTLETS).speakers == expected


@pytest.mark.parametrize(
    ("before", "after", "who"),
    [
        ("", ", Lavrov pointed out on Friday.", "Lavrov"),
        ("", " Lavrov told reporters in Moscow.", "Lavrov"),
        ("", ", said Sergey Lavrov, the foreign minister.", "Sergey Lavrov"),
        (
            "Russian Foreign Minister Sergey Lavrov said: ",
            "",
            "Russian Foreign Minister Sergey Lavrov",
        ),
        ("The minister stressed that ", ".", "The minister"),
        ("", ", she asked.", ""),  # a question put to someone is not a quote of theirs
        ("He said the talks ", " would go on.", ""),  # a few quoted words inside a sentence
    ],
)
def test_the_words_around_a_quotation_name_its_speaker(before: str, after: str, who: str) -> None:
    assert attributed_to(before, after) == who


@pytest.mark.parametrize(
    ("text", "speaks"),
    [
        ('"We were told the alliance would not move," Lavrov elaborated.', True),
        ("NATO must stop, said Foreign Minister Sergey Lavrov on Friday.", True),
        ("Lavrov told reporters in Moscow that talks had failed.", True),
        ("The talks failed, according to Lavrov.", True),
        ("Lavrov asked whether the talks had failed.", True),
        ('Lavrov: "We will respond."', True),
        ("Blinken proposed a meeting with Lavrov, and welcomed continued coordination.", False),
        ("Blinken said he would meet Lavrov next week.", False),
    ],
)
def test_words_attributed_to_a_speaker_in_a_chunk(text: str, speaks: bool) -> None:
    assert bool(speaking_pattern("Lavrov").search(text)) is speaks


def test_transcript_labels_name_the_speaker_and_mark_reporters() -> None:
    text = "Q Is the President worried?\n\nMS. PSAKI: He is.\n\nTHE PRESIDENT: We have a plan."
    assert transcript_label(text, 0) == "Q"
    assert transcript_label(text, text.index("He is")) == "MS. PSAKI"
    assert label_name("MS. PSAKI") == "Psaki"
    assert label_name(transcript_label(text, text.index("We have")) or "") == "The President"


def test_names_without_titles_tell_people_apart() -> None:
    assert strip_titles("Russian Foreign Minister Sergey Lavrov") == "Sergey Lavrov"
    assert strip_titles("Lavrov") == "Lavrov"
    assert name_tokens("Secretary Blinken's") == {"blinken"}
    assert same_speaker("Sergey Lavrov", "Foreign Minister Lavrov")
    assert not same_speaker("Lavrov", "Blinken")
    assert not same_speaker("", "Lavrov")


def test_the_person_an_answer_quotes() -> None:
    answer = "Sergey Lavrov said (TASS, 28 Jan 2022): “No one will.” [1] Blinken said: “Yes.” [2]"
    assert quoted_in_answer(answer) == "Sergey Lavrov"
    assert quoted_in_answer("Prices rose 7 percent last year. [1]") == ""


# Transcripts: turns, labels, and who speaks (snippets of the demo corpus) ----------------------

BRIEFING_TITLE = "Press Briefing by Press Secretary Jen Psaki, February 16, 2022"
BRIEFING = (
    "1:05 P.M. EST\n\nMS. PSAKI:\u00a0 Hi, everyone.\u00a0 Okay.\n\n"
    "Q\u00a0\u00a0\u00a0 And oil prices are nearing $100 a barrel.\u00a0 What is the\n"
    "administration doing about that?  \n\u00a0  \n"
    "MS. PSAKI:\u00a0 Well, we have been in touch with allies and partners, suppliers\n"
    "out there on the global stage for weeks now.  \n"
    "Q\u00a0 \u2014 which is: Would you release oil from the reserve?\n\n"
    "MS. JEAN-PIERRE:\u00a0 I don\u2019t have anything on that.\n"
)
PRESS_CONFERENCE_TITLE = (
    "Remarks by President Biden and Chancellor Scholz of the Federal Republic of Germany at "
    "Press Conference"
)
PRESS_CONFERENCE = (
    "\u00a0\u00a0\u00a0\u00a0 CHANCELLOR SCHOLZ:\u00a0 (As interpreted.)\u00a0 Thank you very much."
    "\u00a0 Good\n"
    "afternoon from my side as well.  \n  \n"
    "THE PRESIDENT:\u00a0 If Russia invades, there will be no longer a Nord Stream 2.\n\n"
    "MR. SULLIVAN:\u00a0 As Deputy Secretary Sherman said, and as was coordinated with allies at\n"
    "NATO: We are prepared to discuss reciprocal limitations.\n"
)


def test_briefing_turns_give_each_paragraph_its_speaker_and_mark_reporters() -> None:
    turns = transcript_turns(BRIEFING, BRIEFING_TITLE)
    assert [(t.label, t.is_question) for t in turns] == [
        ("MS. PSAKI", False),
        ("Q", True),  # no colon: "Q" and non-breaking spaces
        ("MS. PSAKI", False),
        ("Q", True),  # "Q —", a reporter breaking in
        ("MS. JEAN-PIERRE", False),
    ]
    assert turns[0].speaker == "Jen Psaki" and turns[0].role == "Press Secretary"
    assert turns[1].speaker == "A reporter"
    assert BRIEFING[turns[2].body :].startswith("Well, we have been")
    assert turn_at(turns, BRIEFING.index("oil prices")) == turns[1]
    assert turn_at(turns, BRIEFING.index("1:05")) is None  # before the first label
    assert transcript_label(BRIEFING, BRIEFING.index("suppliers")) == "MS. PSAKI"


def test_labels_resolve_to_the_person_the_document_names() -> None:
    intro = "Principal Deputy Press Secretary Karine Jean-Pierre took questions.\n\n"
    assert resolve_label("MS. JEAN-PIERRE", "Press Briefing", intro) == (
        "Karine Jean-Pierre",
        "Principal Deputy Press Secretary",
    )
    assert resolve_label("THE PRESIDENT", PRESS_CONFERENCE_TITLE, "") == (
        "President Biden",
        "President",
    )
    assert resolve_label("MS. JEAN-PIERRE", "", "")[0] == "Jean-Pierre"  # nobody says who
    assert resolve_label("SENIOR ADMINISTRATION OFFICIAL", "", "")[0] == (
        "A senior administration official"
    )
    assert resolve_label("MODERATOR", "", "")[0] == "The moderator"


def test_a_joint_press_conference_keeps_interpreted_remarks_and_skips_wrapped_words() -> None:
    turns = transcript_turns(PRESS_CONFERENCE, PRESS_CONFERENCE_TITLE)
    assert [t.speaker for t in turns] == ["Chancellor Scholz", "President Biden", "Sullivan"]
    assert PRESS_CONFERENCE[turns[0].body :].startswith("Thank you very much")  # interpreted
    # "NATO:" opens a wrapped line inside Sullivan's answer: not a label
    assert turn_at(turns, PRESS_CONFERENCE.index("reciprocal")) == turns[2]


def test_headings_and_articles_are_not_transcripts() -> None:
    memo = "MEMORANDUM FOR THE SECRETARY OF STATE\n\nSUBJECT:\u00a0 Improving Cybersecurity\n"
    assert transcript_turns(memo) == ()
    assert transcript_turns("UPDATE: Lavrov said the talks would go on.\n\nMore later.") == ()
    statement = transcript_turns("We will act.", "Statement by President Biden on Ukraine")
    assert [(t.speaker, t.role, t.start, t.end) for t in statement] == [
        ("President Biden", "President", 0, 12)
    ]


def test_an_excerpt_that_cut_the_label_keeps_the_speaker() -> None:
    article = transcript_turns(BRIEFING, BRIEFING_TITLE)
    start = BRIEFING.index("out there")  # mid-turn: "MS. PSAKI:" is not in the excerpt
    end = BRIEFING.index("MS. JEAN-PIERRE")
    passage = make_passage(BRIEFING[start:end], start=start, title=BRIEFING_TITLE)
    passage = replace(passage, turns=article)
    turns = passage_turns(passage)
    assert [(t.speaker, t.start) for t in turns] == [
        ("Jen Psaki", 0),
        ("A reporter", passage.text.index("Q\u00a0 \u2014")),
    ]
    unit = next(u for u in passage_units(passage, 0) if "out there" in u.text)
    said = attribute(unit, passage)
    assert said is not None and said.speaker == "Jen Psaki" and not said.question
    asked = next(u for u in passage_units(passage, 0) if "reserve" in u.text)
    found = attribute(asked, passage)
    assert found is not None and found.question


def test_llm_sources_mark_who_speaks_and_reporters_questions() -> None:
    passage = make_passage(BRIEFING, title=BRIEFING_TITLE)
    text = render_sources([passage])
    assert "[Jen Psaki, Press Secretary] Hi, everyone." in text
    assert "[Reporter's question] And oil prices" in text
    assert "MS. PSAKI:" not in text


# Answers over real briefings -------------------------------------------------------------------

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "whitehouse-2022.jsonl"
BRIEFING_ID = "2022-02-16-press-briefing-by-press-secretary-jen-psaki-february-16-2022"
PRESS_CONFERENCE_ID = (
    "2022-02-07-remarks-by-president-biden-and-chancellor-scholz-of-the-federal-republic-of-"
    "germany-at-press-conference"
)


@pytest.fixture(scope="module")
def briefings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Engine:
    """An engine over a Psaki briefing and the Biden-Scholz press conference of the demo."""
    wanted = {BRIEFING_ID, PRESS_CONFERENCE_ID}
    articles = [a for line in DEMO.open() if (a := json.loads(line))["id"] in wanted]
    assert len(articles) == 2
    return engine_over(tmp_path_factory.mktemp("briefings"), articles, embedder)


def _reporters_words(answer: Answer) -> list[str]:
    """The answer's quotes that lie in a reporter's turn of their article."""
    found = []
    for c in answer.citations:
        turn = turn_at(passage_turns(c.passage), c.passage_offset)
        if turn is not None and turn.is_question:
            found.append(c.quote)
    return found


def test_what_psaki_said_is_answered_with_her_words_never_a_reporters(briefings: Engine) -> None:
    answer = briefings.ask("What did Psaki say about oil prices?", use_llm=False)
    assert not answer.refused
    assert answer.text.startswith("Jen Psaki said")
    assert "Q\u00a0" not in answer.text and not _reporters_words(answer)


def test_a_leader_at_a_joint_press_conference_is_answered_with_the_leaders_words(
    briefings: Engine,
) -> None:
    answer = briefings.ask(
        "What did Chancellor Scholz say about Russia and Ukraine?", use_llm=False
    )
    assert not answer.refused
    assert answer.text.startswith("Chancellor Scholz said")
    assert not _reporters_words(answer)


@pytest.mark.parametrize(
    "question",
    ["What did Chancellor Scholz say about student loans?", "What did Psaki say about the Oscars?"],
)
def test_a_person_who_never_speaks_on_the_topic_is_refused(
    briefings: Engine, question: str
) -> None:
    assert briefings.ask(question, use_llm=False).refused


GAGGLE = """Press Gaggle by Press Secretary Jen Psaki En Route Omaha

MS. PSAKI: Good afternoon. I have one item for you at the top. The President will sign the
rail safety bill on Friday.

Q Jen, tomorrow there's a key report on wheat prices. But first of all, I want to ask: will
the President visit the flooded towns along the river this week?

MS. PSAKI: I have seen those reports. I have not talked to the President about a trip. Let
me check with our team on that.

Q And on wheat prices, do you have any —

MS. PSAKI: Yes, on wheat, absolutely. We expect wheat prices to ease in the months ahead as
the new harvest comes in. Farmers planted more acres this spring, and export routes have
reopened.

Q On the rail bill, will the unions be at the signing?

MS. PSAKI: I expect the unions will be represented at the signing on Friday. We will have more
on the guest list soon.
"""


def test_a_reply_that_only_acknowledges_gives_way_to_the_reply_on_the_topic(
    tmp_path: Path, embedder: Embedder
) -> None:
    article = {
        "title": "Press Gaggle by Press Secretary Jen Psaki En Route Omaha",
        "body": GAGGLE.split("\n\n", 1)[1],
        "source": "The White House",
        "published_at": "2022-01-11",
        "url": "https://example.org/gaggle",
    }
    engine = engine_over(tmp_path, [article], embedder)
    answer = engine.ask("What did Psaki say about the wheat price report?", use_llm=False)
    assert "wheat prices to ease" in answer.text
    assert "I have seen those reports" not in answer.text.split("[1]")[0]


def test_a_setting_before_the_question_keeps_it_a_question_about_words() -> None:
    question = "Aboard Air Force One, how did Psaki respond to a report on crime?"
    assert asks_what_was_said(question) == "Psaki"
    assert asks_what_was_said("In 2022, which company did Orbitel buy?") == ""


def test_a_reply_cut_over_two_excerpts_is_quoted_on_from_its_best_sentence() -> None:
    first = "Well, last July we said so. Our hope is that platforms act."
    second = "That includes the app. This label is a positive step."
    a = make_passage(first, chunk_id="x-0001", start=100)
    b = make_passage(second, chunk_id="x-0002", start=100 + len(first) + 1)

    def unit(passage: Passage, index: int, sentence: str, score: float) -> Candidate:
        start = passage.text.index(sentence)
        end = start + len(sentence)
        attribution = Attribution("Jen Psaki", start, end)
        return Candidate(
            0, Unit(index, start, end, sentence), passage, score, score, attribution, True, set()
        )

    reply = [
        unit(a, 0, "Well, last July we said so.", 0.3),
        unit(a, 0, "Our hope is that platforms act.", 0.6),
        unit(b, 1, "That includes the app.", 0.2),
        unit(b, 1, "This label is a positive step.", 0.4),
    ]
    pieces = reply_quote(reply, max_words=110)
    assert [[c.unit.text for c in piece] for piece in pieces] == [
        ["Our hope is that platforms act."],
        ["That includes the app.", "This label is a positive step."],
    ]
    assert reply_quote(reply, max_words=9) == [[reply[1]]]  # the words run out: one piece


def test_the_day_a_question_names_picks_that_days_reply_though_its_question_is_looser(
    tmp_path: Path, embedder: Embedder
) -> None:
    def briefing(day: str, body: str) -> dict[str, str]:
        return {
            "title": f"Press Briefing by Press Secretary Jen Psaki, {day}, 2022",
            "body": body,
            "source": "The White House",
            "published_at": f"2022-{'01-14' if day.startswith('Jan') else '02-18'}",
            "url": f"https://example.org/{day.replace(' ', '-')}",
        }

    articles = [
        briefing(
            "January 14",
            "MS. PSAKI: Good afternoon.\n\nQ And then, I have one question on Iran. Can you talk "
            "about what this final push for an agreement looks like?\n\nMS. PSAKI: I, of course, "
            "agree with the Secretary. Though there has been some progress, if we don't reach an "
            "understanding soon, we will have to consider a different path forward.\n\nQ On the "
            "storm, will FEMA send more teams?\n\nMS. PSAKI: FEMA has sent four more teams.",
        ),
        briefing(
            "February 18",
            "MS. PSAKI: Hi everyone.\n\nQ Jen, on the Vienna talks on the Iran nuclear deal, where "
            "do things stand?\n\nMS. PSAKI: The Vienna talks on the Iran nuclear deal continue to "
            "be in the eighth round.\n\nQ And on the budget?\n\nMS. PSAKI: It comes out in March.",
        ),
    ]
    engine = engine_over(tmp_path, articles, embedder)
    answer = engine.ask(
        "What did Psaki say about the Vienna talks on the Iran nuclear deal at her January 14 "
        "briefing?",
        use_llm=False,
    )
    assert answer.citations[0].passage.published.startswith("2022-01-14")
    assert "consider a different path forward" in answer.text


def test_words_broken_off_are_no_reply_and_a_person_only_named_is_not_quoted(
    tmp_path: Path, embedder: Embedder
) -> None:
    def candidate(text: str) -> Candidate:
        passage = make_passage(text)
        unit = Unit(0, 0, len(text), text)
        said = Attribution("Joe Biden", 0, len(text))
        return Candidate(0, unit, passage, 0.5, 0.5, said, True, set())

    assert cut_off(candidate("I —."))
    assert cut_off(candidate("Does the Defense Department of the United States —."))
    assert not cut_off(candidate("We haven't resolved that completely yet."))
    article = {
        "title": "Press Briefing by Press Secretary Jen Psaki, January 26, 2022",
        "body": "MS. PSAKI: Vice President Harris will travel to Honduras this week.\n\n"
        "Q On student loans, will the pause be extended again?\n\n"
        "MS. PSAKI: In terms of student loans, $15 billion in loans have been forgiven since "
        "the President took office, benefiting 675,000 borrowers.",
        "source": "The White House",
        "published_at": "2022-01-26",
        "url": "https://example.org/loans",
    }
    engine = engine_over(tmp_path, [article], embedder)
    answer = engine.ask(
        "What did Vice President Harris say about student loan forgiveness?", use_llm=False
    )
    assert answer.refused  # the evidence names her and quotes Psaki: nothing of hers
