"""The question format's extensions (must_contain, must_not_contain, follow_up_of), the answer
metrics (short-answer F1, yes/no verdicts beside always "yes", right or wrong), follow-ups asked
as conversations, and the bundled demo question set run with one command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from evaluation import metrics
from evaluation.errors import EvaluationError
from evaluation.questions import DEMO_QUERIES, Question, load_questions
from evaluation.runs import ANSWERS_FILE, run_benchmark
from evaluation.scoring import score_answer, summarise_answers, wrong_because
from evaluation.targets import HttpTarget, Prediction


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def said(
    answer: str,
    *,
    refused: bool = False,
    short: str | None = None,
    verdict: str | None = None,
) -> Prediction:
    short_answer = {"text": short, "citation": 1, "kind": "person"} if short else None
    return Prediction(
        answer, refused, "extractive", [], [], 0.1, 0.1, short_answer=short_answer, verdict=verdict
    )


def ask(
    question: str = "What did Psaki say?", answers: Sequence[str] = (), **extra: Any
) -> Question:
    return Question("q", question, tuple(answers), "speaker", **extra)


def test_format_extensions_are_read(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "What did Psaki say about masks?", "must_contain": "well-fit"},
        {
            "id": "b",
            "question": "And about tests?",
            "answer": "500 million",
            "must_contain": ["tests", "RFP"],
            "must_not_contain": ["Can you say"],
            "follow_up_of": "a",
            "question_type": "follow_up",
        },
    ]
    first, second = load_questions(write_jsonl(tmp_path / "q.jsonl", rows)).questions
    assert first.must_contain == ("well-fit",) and first.answers == ()
    assert second.must_contain == ("tests", "RFP") and second.must_not_contain == ("Can you say",)
    assert second.follow_up_of == "a" and not first.follow_up_of


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"question": "x", "must_contain": [""]}, "q.jsonl:2: field 'must_contain': empty phrase"),
        (
            {"question": "x", "answer": "y", "must_not_contain": {"a": 1}},
            "q.jsonl:2: field 'must_not_contain': expected a list",
        ),
        (
            {"question": "x", "answer": "y", "follow_up_of": "later"},
            "q.jsonl:2: field 'follow_up_of': no earlier question has the id 'later'",
        ),
        ({"question": "x"}, "q.jsonl:2: field 'answer': missing or empty"),
    ],
)
def test_format_errors_name_file_line_and_field(
    tmp_path: Path, row: dict[str, Any], message: str
) -> None:
    rows = [{"id": "first", "question": "Who?", "answer": "Psaki"}, row]
    with pytest.raises(EvaluationError, match=message):
        load_questions(write_jsonl(tmp_path / "q.jsonl", rows))


def test_short_f1_uses_the_short_answer_else_the_first_sentence() -> None:
    question = ask("Who was convicted?", ["Sam Bankman-Fried"])
    with_short = score_answer(question, said("Sam Bankman-Fried [1]. More.", short="Bankman-Fried"))
    assert with_short["short_f1"] == pytest.approx(2 / 3)
    first_sentence = score_answer(question, said("Sam Bankman-Fried [1]. He was convicted [2]."))
    assert first_sentence["short_f1"] == 1.0
    assert score_answer(question, said("Refused.", refused=True))["short_f1"] == 0.0
    # not for yes/no gold answers, nor for questions to refuse
    assert score_answer(ask("Did it?", ["Yes"]), said("Yes."))["short_f1"] is None
    refuse = ask("Who?", [metrics.NO_ANSWER])
    assert score_answer(refuse, said("x", refused=True))["short_f1"] is None


def test_verdict_accuracy_beside_always_yes() -> None:
    golds = ["Yes", "Yes", "No", "No", "Sam"]
    verdicts = ["yes", "no", None, "no", "yes"]
    rows = [
        {
            "question_type": "comparison" if i < 2 else "temporal",
            "scores": score_answer(ask("Did it?", [g]), said("Text.", verdict=v)),
            "citations": [],
            "refused": False,
            "unanswerable": False,
            "latency_s": 0.1,
            "first_token_s": 0.1,
            "mode": "extractive",
        }
        for i, (g, v) in enumerate(zip(golds, verdicts, strict=True))
    ]
    summary = summarise_answers(rows)
    overall, counts = summary["overall"]["scores"], summary["overall"]["counts"]
    assert counts["verdict_coverage"] == 4  # the non yes/no question does not count
    assert overall["verdict_coverage"] == pytest.approx(3 / 4)
    assert overall["verdict_accuracy"] == pytest.approx(2 / 3)
    assert overall["yes_on_verdicts"] == pytest.approx(2 / 3)
    assert overall["yes_baseline"] == pytest.approx(1 / 2)
    assert summary["by_type"]["comparison"]["scores"]["verdict_accuracy"] == 0.5
    assert summary["by_type"]["comparison"]["scores"]["yes_baseline"] == 1.0


def test_right_answers() -> None:
    speaker = ask(must_contain=("a well-fit mask",), must_not_contain=("virtually useless",))
    assert not wrong_because(speaker, said("Psaki said: A well-fit mask is best [1]."))
    assert wrong_because(speaker, said("Masks help [1].")) == "lacks 'a well-fit mask'"
    both = said("A WELL-FIT  mask, not cloth masks that are virtually useless [1].")
    assert wrong_because(speaker, both) == "contains 'virtually useless'"
    assert wrong_because(speaker, said("x", refused=True)) == "refused"
    refuse = ask(answers=[metrics.NO_ANSWER])
    assert not wrong_because(refuse, said("Not in the archive.", refused=True))
    assert wrong_because(refuse, said("Something.")) == "answered a question to refuse"
    factoid = ask("How much?", ["$7 billion"])
    assert not wrong_because(factoid, said("GM invests $7 billion [1]."))  # lenient
    assert wrong_because(factoid, said("Seven [1].")) == "matches no gold answer"
    named = ask("Who?", ["Ketanji Brown Jackson"])
    assert not wrong_because(named, said("Judge Brown-Jackson [1].", short="Brown Jackson"))
    assert not wrong_because(ask("Did it?", ["No"]), said("It did not [1].", verdict="no"))
    assert score_answer(named, said("Nobody."))["right"] == 0.0


def test_old_answer_records_stay_readable() -> None:
    old = {
        "answer": "Yes [1]",
        "refused": False,
        "mode": "extractive",
        "citations": [],
        "passages": [],
        "latency_s": 0.2,
        "first_token_s": 0.1,
    }
    prediction = Prediction.from_record(old)
    assert prediction.short_answer is None and prediction.verdict is None
    assert prediction.short_text == "Yes"
    data = {**old, "short_answer": {"text": "17 June"}, "verdict": "yes"}
    assert Prediction.from_answer(data, 0.1, 0.1).short_text == "17 June"


class RecordingTarget:
    """Answers every question with its own text, and notes the history it was given."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[tuple[str, str]]]] = []

    def answer(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Prediction:
        self.asked.append((question, list(history)))
        return said(f"About {question} [1].")

    def describe(self) -> dict[str, Any]:
        return {"target": "recording", "answer_mode": "extractive", "k": 10}


def test_follow_ups_are_asked_as_a_conversation(tmp_path: Path) -> None:
    rows = [
        {"id": "p", "question": "What did Psaki say about masks?", "must_contain": "masks"},
        {"id": "f", "question": "And tests?", "must_contain": "tests", "follow_up_of": "p"},
        {"id": "g", "question": "And then?", "must_contain": "then", "follow_up_of": "f"},
    ]
    questions = load_questions(write_jsonl(tmp_path / "q.jsonl", rows)).questions
    target = RecordingTarget()
    run = run_benchmark(questions, target, tmp_path / "all", progress=False)
    first_turn = ("What did Psaki say about masks?", "About What did Psaki say about masks? [1].")
    assert target.asked[1] == ("And tests?", [first_turn])
    assert target.asked[2][1] == [first_turn, ("And tests?", "About And tests? [1].")]
    assert run.records[1]["history"] == [list(first_turn)]
    assert run.summary["overall"]["scores"]["right"] == 1.0
    # a follow-up alone: its earlier question is asked first, unscored
    alone = RecordingTarget()
    run = run_benchmark(
        questions[1:2], alone, tmp_path / "alone", progress=False, context=questions
    )
    assert [q for q, _ in alone.asked] == ["What did Psaki say about masks?", "And tests?"]
    assert alone.asked[1][1] == [first_turn] and len(run.records) == 1
    # resumed: the history is read back with the answer
    again = run_benchmark(questions, RecordingTarget(), tmp_path / "all", progress=False)
    assert (
        again.records[2]["history"]
        == run_benchmark(questions, RecordingTarget(), tmp_path / "all", progress=False).records[2][
            "history"
        ]
    )


def test_http_target_sends_the_history() -> None:
    sent: list[dict[str, Any]] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        body = {"answer": "Yes [1].", "refused": False, "mode": "extractive", "verdict": "yes"}
        return httpx.Response(200, json=body)

    target = HttpTarget("http://127.0.0.1:1")
    target.client = httpx.Client(base_url=target.url, transport=httpx.MockTransport(server))
    prediction = target.answer("And then?", history=[("Who?", "Psaki [1].")])
    assert sent[0]["history"] == [
        {"role": "user", "content": "Who?"},
        {"role": "assistant", "content": "Psaki [1]."},
    ]
    assert prediction.verdict == "yes"
    target.answer("Alone?")
    assert "history" not in sent[1]
    target.close()


def test_the_demo_question_set_ships_and_holds_every_kind() -> None:
    source = load_questions(DEMO_QUERIES)
    questions = source.questions
    assert len(questions) >= 45 and source.format == "generic"
    kinds = {q.question_type for q in questions}
    assert kinds == {"speaker", "factoid", "refuse", "follow_up"}
    speakers = [q for q in questions if q.question_type == "speaker" and q.must_not_contain]
    assert len(speakers) >= 10 and all(q.must_contain for q in speakers)
    assert sum(q.unanswerable for q in questions) >= 8
    assert all(q.follow_up_of for q in questions if q.question_type == "follow_up")


@pytest.mark.slow
def test_demo_command_runs_over_the_demo_index(tmp_path: Path) -> None:
    from serving.cli import cli

    out = tmp_path / "run"
    args = ["--storage", str(tmp_path / "storage"), "eval", "answers", "--demo"]
    result = CliRunner().invoke(cli, [*args, "--limit", "3", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / ANSWERS_FILE).read_text().splitlines()]
    assert [r["id"] for r in records] == [q.id for q in load_questions(DEMO_QUERIES).questions][:3]
    assert all(r["passages"] for r in records)  # answered from the demo index
    report = (out / "report.md").read_text()
    assert "| right |" in report and "## Not right" in report
    assert json.loads((out / "run.json").read_text())["corpus"].startswith("demo")
    clash = CliRunner().invoke(cli, [*args, "--queries", str(DEMO_QUERIES)])
    assert clash.exit_code != 0 and "leave out --queries" in clash.output
