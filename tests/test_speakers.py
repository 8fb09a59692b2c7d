"""Who said what: speech verbs, quote attribution, words given to a person, speakers asked about."""

from __future__ import annotations

import re

import pytest

from assistant.query import OutletMatcher, parse_question
from assistant.speakers import (
    SPEECH_VERB_USES,
    SPEECH_VERBS,
    attributed_to,
    label_name,
    name_tokens,
    quoted_in_answer,
    same_speaker,
    speaking_pattern,
    strip_titles,
    transcript_label,
    verbs_for,
)

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
