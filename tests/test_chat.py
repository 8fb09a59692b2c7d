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
