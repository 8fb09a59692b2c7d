"""Follow-up questions made standalone from the conversation, by rules, before retrieval."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.chat import condense_question, is_follow_up

LAVROV_TURN = (
    "What did Lavrov say about NATO expansion?",
    "Lavrov said (TASS, 28 Jan 2022): “This will be yet another admission ...” [1]",
)


@pytest.mark.parametrize(
    ("follow_up", "standalone"),
    [
        ("and what did Blinken say?", "What did Blinken say about NATO expansion?"),
        ("What about Blinken?", "What did Blinken say about NATO expansion?"),
        ("And Psaki?", "What did Psaki say about NATO expansion?"),
        ("what about Ukraine?", "What did Lavrov say about Ukraine?"),
        ("What did he say about the OSCE?", "What did Lavrov say about the OSCE?"),
        ("What did Biden say about it?", "What did Biden say about NATO expansion?"),
        (
            "what happened next?",
            "What happened next regarding NATO expansion after 28 Jan 2022?",
        ),
    ],
)
def test_follow_ups_become_standalone(follow_up: str, standalone: str) -> None:
    assert condense_question(follow_up, [LAVROV_TURN]) == standalone


BIDEN_TURN = (
    "What did Biden say about sanctions on Russia?",
    "Joe Biden said (Reuters, 24 Feb 2022): “...” [1]",
)
ZELENSKY_TURN = (
    "What did Zelensky say about the grain deal?",
    "Volodymyr Zelensky said (Kyiv Independent, 17 Jul 2023): “...” [1]",
)
EU_TURN = (
    "What sanctions did the EU impose on Russia?",
    "The EU agreed a package of sanctions (Reuters, 2 Mar 2022) [1]",
)
TROOPS_TURN = (
    "How many troops did Russia mass near the border in January 2022?",
    "About 100,000 troops, according to US officials (AP, 28 Jan 2022) [1]",
)
GENEVA_TURN = (
    "What happened at the Geneva talks?",
    "The talks ended without agreement (Reuters, 10 Jan 2022) [1]",
)
PSAKI_CHAIN = [LAVROV_TURN, ("And Psaki?", "Jen Psaki said (CNN, 31 Jan 2022): “...” [1]")]
# answers that lead with their short answer ("Intel [1]. ...") when the question asks for one
CHIPS_TURN = (
    "Which companies pledged to build chip factories in Ohio?",
    "Intel [1]. Intel said ...",
)
EMHOFF_TURN = (
    "Who will lead the US delegation to the Beijing Olympics?",
    "Doug Emhoff [1]. The White House said ...",
)
FDA_TURN = ("Which agency approved the booster shots?", "The FDA [1]. The agency said ...")
G20_TURN = ("Which city will host the G20 summit in 2022?", "Bali [1]. Indonesia ...")
POLAND_TURN = ("How many troops is the Pentagon sending to Poland?", "3,000 [1]. The troops ...")
AID_TURN = ("How much did Congress approve for Ukraine?", "$13.6 billion [1]. The bill ...")
GENEVA_MEETING_TURN = ("Where did Blinken meet Lavrov?", "Geneva [1]. The two met ...")
RECOGNITION_TURN = (
    "Did Russia recognise the Donetsk and Luhansk republics?",
    "Putin signed decrees recognising them (TASS, 21 Feb 2022) [1]",
)
INFLATION_TURN = (
    "What did Biden say about inflation at his press conference?",
    "President Biden said (The White House, 19 Jan 2022): “...” [1]",
)
KAZAKHSTAN_TURN = ("Which countries sent troops to Kazakhstan?", "Russia [1]. The CSTO ...")

# What a demanding user asks next over a news archive: other speakers, the same speaker on
# another topic, when/where/why/who, the next day, another month or place, pronouns.
FOLLOW_UPS: list[tuple[list[tuple[str, str]], str, str]] = [
    (
        [LAVROV_TURN],
        "And what did Psaki say about that?",
        "What did Psaki say about NATO expansion?",
    ),
    ([LAVROV_TURN], "When was that?", "When did Lavrov say that about NATO expansion?"),
    ([LAVROV_TURN], "When did he say that?", "When did Lavrov say that about NATO expansion?"),
    ([LAVROV_TURN], "Where?", "Where did Lavrov say that about NATO expansion?"),
    ([LAVROV_TURN], "Why did he say that?", "Why did Lavrov say that about NATO expansion?"),
    ([LAVROV_TURN], "Who said it?", "Who said that about NATO expansion?"),
    ([LAVROV_TURN], "Who else?", "Who else spoke about NATO expansion?"),
    (
        [LAVROV_TURN],
        "And the day after?",
        "What did Lavrov say about NATO expansion the day after 28 Jan 2022?",
    ),
    ([LAVROV_TURN], "Did he mention Finland?", "Did Lavrov mention Finland?"),
    ([LAVROV_TURN], "Was he right about it?", "Was Lavrov right about NATO expansion?"),
    ([LAVROV_TURN], "And what did he say about Finland?", "What did Lavrov say about Finland?"),
    ([LAVROV_TURN], "What did they say about it?", "What did Lavrov say about NATO expansion?"),
    ([BIDEN_TURN], "What about Scholz?", "What did Scholz say about sanctions on Russia?"),
    ([BIDEN_TURN], "And what did Macron say?", "What did Macron say about sanctions on Russia?"),
    ([BIDEN_TURN], "What about China?", "What did Biden say about sanctions on China?"),
    ([BIDEN_TURN], "When?", "When did Biden say that about sanctions on Russia?"),
    (
        [BIDEN_TURN],
        "And a week later?",
        "What did Biden say about sanctions on Russia a week after 24 Feb 2022?",
    ),
    ([ZELENSKY_TURN], "And what did Erdogan say?", "What did Erdogan say about the grain deal?"),
    ([ZELENSKY_TURN], "Did he mention Turkey?", "Did Zelensky mention Turkey?"),
    ([ZELENSKY_TURN], "Did he criticise it?", "Did Zelensky criticise the grain deal?"),
    (
        [ZELENSKY_TURN],
        "What did his spokesman say about it?",
        "What did Zelensky’s spokesman say about the grain deal?",
    ),
    ([EU_TURN], "What about China?", "What sanctions did the EU impose on China?"),
    ([EU_TURN], "And in 2023?", "What sanctions did the EU impose on Russia in 2023?"),
    (
        [EU_TURN],
        "What happened next?",
        "What sanctions did the EU impose on Russia after 2 Mar 2022?",
    ),
    (
        [TROOPS_TURN],
        "And in February?",
        "How many troops did Russia mass near the border in February?",
    ),
    (
        [TROOPS_TURN],
        "What about Belarus?",
        "How many troops did Belarus mass near the border in January 2022?",
    ),
    (
        [TROOPS_TURN],
        "What about in March 2022?",
        "How many troops did Russia mass near the border in March 2022?",
    ),
    (
        [TROOPS_TURN],
        "And before that?",
        "How many troops did Russia mass near the border before 28 Jan 2022?",
    ),
    (
        [GENEVA_TURN],
        "And then what happened?",
        "What happened next regarding the Geneva talks after 10 Jan 2022?",
    ),
    ([GENEVA_TURN], "When was that?", "When was there news about the Geneva talks?"),
    (
        [GENEVA_TURN],
        "And the next day?",
        "What happened at the Geneva talks the day after 10 Jan 2022?",
    ),
    (PSAKI_CHAIN, "When did she say that?", "When did Psaki say that about NATO expansion?"),
    (PSAKI_CHAIN, "What about Blinken?", "What did Blinken say about NATO expansion?"),
    (
        PSAKI_CHAIN,
        "And the day after?",
        "What did Psaki say about NATO expansion the day after 31 Jan 2022?",
    ),
    # elliptical wh-questions: the previous question with its wh-phrase swapped (and its
    # short answer put in the slot it asked for)
    (
        [CHIPS_TURN],
        "Who else?",
        "Which companies other than Intel pledged to build chip factories in Ohio?",
    ),
    (
        [EMHOFF_TURN],
        "and who else?",
        "Who other than Doug Emhoff will lead the US delegation to the Beijing Olympics?",
    ),
    ([CHIPS_TURN], "When?", "When did Intel pledge to build chip factories in Ohio?"),
    ([GENEVA_MEETING_TURN], "Why?", "Why did Blinken meet Lavrov?"),
    ([GENEVA_MEETING_TURN], "And when was that?", "When did Blinken meet Lavrov?"),
    (
        [RECOGNITION_TURN],
        "When?",
        "When did Russia recognise the Donetsk and Luhansk republics?",
    ),
    ([KAZAKHSTAN_TURN], "how many?", "How many countries sent troops to Kazakhstan?"),
    # pronouns: the short answer when an entity was asked for, else what the question was about
    ([FDA_TURN], "When did it approve them?", "When did The FDA approve the booster shots?"),
    (
        [EMHOFF_TURN],
        "What did he say about it?",
        "What did Doug Emhoff say about the US delegation to the Beijing Olympics?",
    ),
    (
        [POLAND_TURN],
        "When will they arrive?",
        "When will the 3,000 troops the Pentagon is sending to Poland arrive?",
    ),
    (
        [AID_TURN],
        "What will it pay for?",
        "What will the $13.6 billion Congress approved for Ukraine pay for?",
    ),
    (
        [LAVROV_TURN],
        "Did NATO and the US answer it?",
        "Did NATO and the US answer NATO expansion?",
    ),
    ([CHIPS_TURN], "How many jobs will it create?", "How many jobs will Intel create?"),
    # "the year after/before" moves the year the previous question named
    ([G20_TURN], "And the year before?", "Which city will host the G20 summit in 2021?"),
    ([G20_TURN], "who hosts it the following year?", "Who hosts the G20 summit in 2023?"),
    # a new speaker does not take over the previous speaker's occasion
    ([INFLATION_TURN], "And what did Powell say?", "What did Powell say about inflation?"),
    ([INFLATION_TURN], "What about Yellen?", "What did Yellen say about inflation?"),
    (
        [INFLATION_TURN],
        "And what did he say about it at his next one?",
        "What did Biden say about inflation at his next one?",
    ),
]


@pytest.mark.parametrize(("history", "follow_up", "standalone"), FOLLOW_UPS)
def test_follow_ups_become_grammatical_standalone_questions(
    history: list[tuple[str, str]], follow_up: str, standalone: str
) -> None:
    assert condense_question(follow_up, history) == standalone


@pytest.mark.parametrize(
    "question",
    [
        "What did Biden say about sanctions on Russia?",
        "When did Russia invade Ukraine?",
        "Who is the president of Finland?",
        "Where is Kherson?",
        "How many refugees left Ukraine in March 2022?",
    ],
)
def test_questions_that_are_not_follow_ups_are_returned_unchanged(question: str) -> None:
    assert not is_follow_up(question)
    for turn in (LAVROV_TURN, EU_TURN, GENEVA_TURN):
        assert condense_question(question, [turn]) == question


def test_a_question_that_stands_alone_is_left_as_it_is() -> None:
    question = "What did Biden say about sanctions on Russia?"
    assert not is_follow_up(question)
    assert condense_question(question, [LAVROV_TURN]) == question
    assert condense_question("and what did Blinken say?", []) == "and what did Blinken say?"


def test_follow_ups_of_follow_ups_reach_back_to_the_topic() -> None:
    history = [LAVROV_TURN, ("and what did Blinken say?", "Blinken said ... [1]")]
    assert condense_question("What did he say about Ukraine?", history) == (
        "What did Blinken say about Ukraine?"
    )
    assert condense_question("what about Psaki?", history) == (
        "What did Psaki say about NATO expansion?"
    )


def test_engine_answers_the_standalone_question_and_records_it(small_engine: Any) -> None:
    answer = small_engine.ask("What did he say about the OSCE?", history=[LAVROV_TURN])
    assert answer.question == "What did he say about the OSCE?"
    assert answer.standalone_question == "What did Lavrov say about the OSCE?"
    assert not answer.refused
    assert any(c.passage.source == "TASS" for c in answer.citations)
    assert answer.as_dict()["standalone_question"] == "What did Lavrov say about the OSCE?"


def test_cli_chat_keeps_history_until_cleared(small_engine: Any) -> None:
    from click.testing import CliRunner

    from serving.cli import cli

    lines = [
        "What did Lavrov say about NATO expansion?",
        "What did he say about the OSCE?",
        "/clear",
        "What did he say about the OSCE?",
        "/quit",
        "never read",
    ]
    result = CliRunner().invoke(
        cli,
        ["--storage", str(small_engine.settings.storage_dir), "chat"],
        input="\n".join(lines) + "\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("Sources:") >= 2
    assert "(understood as: What did Lavrov say about the OSCE?)" in result.output
    assert "(conversation cleared)" in result.output
    # after /clear, "he" has nobody to refer to: the question is asked as it is
    assert result.output.count("understood as") == 1
