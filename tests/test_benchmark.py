"""The answer evaluation: question files, sampling, resuming, the report, and the same figures
in-process and over HTTP against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evaluation.errors import EvaluationError, QuestionFailed
from evaluation.questions import DEFAULT_QUERIES, GoldEvidence, load_questions, select_questions
from evaluation.runs import ANSWERS_FILE, run_benchmark
from evaluation.scoring import without_timings
from evaluation.targets import HttpTarget, InProcessTarget, Prediction
from tests.conftest import LiveServer, engine_with_scripted_llm

TOKEN = "bench-token-123"
LAVROV_TITLE = (
    "Russia does not see its security guarantee proposals as excessive, says top diplomat"
)
QUESTIONS = [
    {
        "id": "lavrov",
        "question": "What did Lavrov say about NATO expansion?",
        "answer": "Lavrov",
        "question_type": "inference_query",
        "evidence": [
            {
                "fact": "Moscow does not consider its security guarantee proposals to be excessive",
                "title": LAVROV_TITLE,
            }
        ],
    },
    {
        "id": "replies",
        "question": "When did the United States and NATO send their written replies to Russia?",
        "answers": ["January 26", "26 January"],
        "type": "temporal_query",
        "evidence": ["On January 26, The United States and NATO transmitted their written replies"],
    },
    {
        "id": "moon",
        "question": "Which team won the chess olympiad held on the Moon in 2031?",
        "answer": "Insufficient information.",
        "question_type": "null_query",
    },
    {
        "question": "What did the President sign into law with H.R. 6617?",
        "answer": "continuing appropriations",
        "article_ids": ["no-such-article"],
    },
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_generic_jsonl_questions(tmp_path: Path) -> None:
    source = load_questions(write_jsonl(tmp_path / "mine.jsonl", QUESTIONS))
    assert source.format == "generic"
    lavrov, replies, moon, last = source.questions
    assert lavrov.evidence == (
        GoldEvidence(fact=QUESTIONS[0]["evidence"][0]["fact"], title=LAVROV_TITLE),
    )
    assert replies.answers == ("January 26", "26 January")
    assert replies.question_type == "temporal_query"
    assert replies.facts == [QUESTIONS[1]["evidence"][0]]
    assert moon.unanswerable and not lavrov.unanswerable
    assert last.id == "q4" and last.question_type == "all"
    assert last.evidence == (GoldEvidence(article_id="no-such-article"),)


def test_a_question_marked_unanswerable_needs_no_answer(tmp_path: Path) -> None:
    rows = [{"question": "What did Psaki say about the Oscars?", "unanswerable": True}]
    (question,) = load_questions(write_jsonl(tmp_path / "refuse.jsonl", rows)).questions
    assert question.unanswerable


def test_bundled_multihop_rag_file() -> None:
    source = load_questions(DEFAULT_QUERIES)
    assert source.format == "multihop-rag"
    assert len(source.questions) == 505
    nulls = [q for q in source.questions if q.question_type == "null_query"]
    assert len(nulls) == 59 and all(q.unanswerable and not q.evidence for q in nulls)
    first = source.questions[0]
    assert first.id == "mhr-0000" and first.answers == ("Sam Bankman-Fried",)
    assert first.evidence[0].url.startswith("https://www.theverge.com/")


def test_retrieval_reads_the_same_files_without_gold_answers(tmp_path: Path) -> None:
    path = tmp_path / "queries.json"
    record = {"query": "Who sold out?", "question_type": "comparison_query"}
    evidence = {"fact": "The console sold out", "source": "Polygon", "published_at": "2023-10-11"}
    path.write_text(json.dumps([{**record, "evidence_list": [evidence]}]))
    with pytest.raises(EvaluationError, match="field 'answer'"):
        load_questions(path)
    (question,) = load_questions(path, require_answers=False).questions
    assert question.id == "q0" and question.answers == () and not question.unanswerable
    assert question.evidence == (
        GoldEvidence(fact="The console sold out", source="Polygon", published="2023-10-11"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"question": "Why?"}\n', "mine.jsonl:1: field 'answer': missing or empty"),
        ('{"question": "Why?", "answer": "No"}\n\n{"answer": "x"}\n', "mine.jsonl:3: field"),
        ('{"question": "Why?", "answer": "No"}\n{oops\n', "mine.jsonl:2: not JSON"),
        ('{"question": "A", "answer": "B", "evidence": "C"}\n', "field 'evidence'"),
        (
            '{"id": 1, "question": "A", "answer": "B"}\n'
            '{"id": "1", "question": "C", "answer": "D"}\n',
            "mine.jsonl:2: id '1' also at",
        ),
    ],
)
def test_bad_question_files_say_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(text)
    with pytest.raises(EvaluationError, match=message.replace("(", r"\(")):
        load_questions(path)


def test_seeded_sample_then_limit() -> None:
    questions = load_questions(DEFAULT_QUERIES).questions
    first = select_questions(questions, sample=20, seed=7)
    assert [q.id for q in first] == [q.id for q in select_questions(questions, sample=20, seed=7)]
    assert [q.id for q in first] != [q.id for q in select_questions(questions, sample=20, seed=8)]
    assert [q.id for q in first] == sorted(q.id for q in first)  # kept in file order
    assert select_questions(questions, sample=20, seed=7, limit=5) == first[:5]
    assert select_questions(questions, limit=3) == questions[:3]


class CountingTarget:
    """Answers every question "Yes" and counts the calls; fails on the ids it is told to."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.asked: list[str] = []
        self.failing = failing or set()

    def answer(self, question: str) -> Prediction:
        self.asked.append(question)
        if question in self.failing:
            raise QuestionFailed("HTTP 503: store unavailable")
        return Prediction("Yes [1]", False, "extractive", [], [], 0.2, 0.1)

    def describe(self) -> dict[str, Any]:
        return {"target": "counting", "answer_mode": "extractive", "k": 10}


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    questions = load_questions(DEFAULT_QUERIES).questions[:6]
    out = tmp_path / "run"
    first = CountingTarget()
    run_benchmark(questions[:3], first, out, progress=False)
    assert len(first.asked) == 3
    # a line cut short by a kill, then a rerun over all six: only the missing three are asked
    with (out / ANSWERS_FILE).open("a") as sink:
        sink.write('{"id": "mhr-0003", "answ')
    second = CountingTarget(failing={questions[4].question})
    run = run_benchmark(questions, second, out, progress=False)
    assert second.asked == [q.question for q in questions[3:]]
    assert [r["id"] for r in run.records] == [q.id for i, q in enumerate(questions) if i != 4]
    assert run.summary["failed"] == 1 and run.failures[0]["id"] == questions[4].id
    # the failed one is asked again next time, and nothing else
    third = CountingTarget()
    run = run_benchmark(questions, third, out, progress=False)
    assert third.asked == [questions[4].question]
    assert len(run.records) == 6 and run.summary["failed"] == 0
    yes = [q for q in questions if q.answers == ("Yes",)]
    assert run.summary["overall"]["scores"]["lenient"] == pytest.approx(len(yes) / 6)


def test_a_run_folder_is_not_mixed_with_another_target(tmp_path: Path) -> None:
    questions = load_questions(DEFAULT_QUERIES).questions[:1]
    run_benchmark(questions, CountingTarget(), tmp_path, progress=False)

    class Other(CountingTarget):
        def describe(self) -> dict[str, Any]:
            return {"target": "http://elsewhere:7860", "answer_mode": "extractive", "k": 10}

    with pytest.raises(EvaluationError, match="holds a run with target = 'counting'"):
        run_benchmark(questions, Other(), tmp_path, progress=False)


# The same questions in-process and over HTTP ----------------------------------------------------


@pytest.fixture(scope="module")
def api_server(small_engine: Any) -> Iterator[LiveServer]:
    """The HTTP API over the small index, behind a token."""
    from serving.api import create_api

    settings = small_engine.settings.with_changes(api_token=TOKEN)
    with LiveServer(create_api(small_engine, settings)) as server:
        yield server


@pytest.fixture(scope="module")
def question_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("questions") / "mine.jsonl", QUESTIONS)


def test_http_gives_the_same_figures_as_in_process(
    small_engine: Any, api_server: LiveServer, question_file: Path, tmp_path: Path
) -> None:
    questions = load_questions(question_file).questions
    local = run_benchmark(
        questions, InProcessTarget(small_engine, use_llm=False), tmp_path / "local", progress=False
    )
    remote_target = HttpTarget(api_server.url, token=TOKEN, use_llm=False)
    remote_target.check()
    remote = run_benchmark(questions, remote_target, tmp_path / "remote", progress=False)
    remote_target.close()

    assert without_timings(remote.summary) == without_timings(local.summary)
    for mine, theirs in zip(local.records, remote.records, strict=True):
        for key in ("answer", "refused", "mode", "citations", "passages", "fact_ranks", "scores"):
            assert mine[key] == theirs[key], (mine["id"], key)
    by_id = {r["id"]: r for r in local.records}
    assert by_id["lavrov"]["scores"]["Hits@4"] == 1.0
    assert by_id["lavrov"]["scores"]["citation_recall"] == 1.0
    assert by_id["replies"]["scores"]["Hits@10"] == 1.0
    assert by_id["moon"]["refused"] and by_id["moon"]["scores"]["lenient"] == 1.0
    assert len(by_id["lavrov"]["passages"]) == 10
    assert local.manifest["target"] == "in-process"
    assert remote.manifest["server"]["status"] == "ok"


def test_http_needs_the_token(api_server: LiveServer) -> None:
    target = HttpTarget(api_server.url, token="wrong")
    with pytest.raises(EvaluationError, match="401: the server wants an API token"):
        target.check()
    target.close()
    with pytest.raises(EvaluationError, match="cannot reach the server"):
        HttpTarget("http://127.0.0.1:9").check()


def test_eval_answers_command_against_a_server(
    api_server: LiveServer, question_file: Path, tmp_path: Path
) -> None:
    from serving.cli import cli

    out = tmp_path / "run"
    args = [
        "--storage",
        str(tmp_path / "storage"),
        "eval",
        "answers",
        "--queries",
        str(question_file),
        "--url",
        api_server.url,
        "--token",
        TOKEN,
        "--limit",
        "3",
        "--out",
        str(out),
        "--quiet",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "lenient acc" in result.output and "refusals: " in result.output
    lines = (out / ANSWERS_FILE).read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["lavrov", "replies", "moon"]
    report = (out / "report.md").read_text()
    assert "## By question type" in report and "| inference_query | 1 |" in report
    assert "arXiv 2401.15391" not in report  # baselines only for MultiHop-RAG files
    for chart in ("scores-by-type.png", "latency.png"):
        assert (out / chart).read_bytes().startswith(b"\x89PNG")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["questions"] == 3
    assert TOKEN not in (out / "run.json").read_text()
    # the same --out again: nothing left to ask, the same figures
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert len((out / ANSWERS_FILE).read_text().splitlines()) == 3
    assert (
        json.loads((out / "summary.json").read_text())["overall"]["scores"]
        == (summary["overall"]["scores"])
    )
    # a corpus is the server's business
    clash = CliRunner().invoke(cli, [*args, "--corpus", str(question_file)])
    assert clash.exit_code != 0 and "own index" in clash.output


def test_a_folder_corpus_gets_an_index_named_by_its_contents(tmp_path: Path) -> None:
    from evaluation.corpus import eval_index_settings
    from serving.config import AppSettings

    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"title": "A", "body": "One."}\n')
    settings = AppSettings(storage_dir=tmp_path / "storage")
    first = eval_index_settings(settings, folder, model_id="m")
    assert first.storage_dir.parent == tmp_path / "storage" and first.collection == "eval"
    assert eval_index_settings(settings, folder, model_id="m") == first
    assert eval_index_settings(settings, folder, model_id="other").storage_dir != first.storage_dir
    (folder / "a.jsonl").write_text('{"title": "A", "body": "Two."}\n')
    assert eval_index_settings(settings, folder, model_id="m").storage_dir != first.storage_dir


def test_llm_mode_is_recorded_with_each_answer(
    small_engine: Any, monkeypatch: pytest.MonkeyPatch, question_file: Path, tmp_path: Path
) -> None:
    """Plumbing around the LLM: the engine set up for one, its reply scripted here."""
    from assistant.answer import REFUSAL

    engine = engine_with_scripted_llm(small_engine, monkeypatch, REFUSAL)
    lavrov = load_questions(question_file).questions[:1]
    run = run_benchmark(lavrov, InProcessTarget(engine), tmp_path / "llm", progress=False)
    assert run.manifest["answer_mode"] == "llm:default"
    assert run.records[0]["mode"] == "llm:default" and run.records[0]["refused"]
    assert run.summary["modes"] == {"llm:default": 1}
    extractive = InProcessTarget(engine, use_llm=False)
    assert extractive.describe()["answer_mode"] == "extractive"
    with pytest.raises(EvaluationError, match="answer_mode = 'llm:default'"):
        run_benchmark(lavrov, extractive, tmp_path / "llm", progress=False)
