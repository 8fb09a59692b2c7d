"""A resumable answer run: a line of answers.jsonl per question, with run.json and summary.json."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evaluation.errors import EvaluationError, QuestionFailed
from evaluation.questions import Question, QuestionFile, conversation
from evaluation.scoring import question_record, summarise_answers
from evaluation.targets import History, Prediction, Target

ANSWERS_FILE = "answers.jsonl"
MANIFEST_FILE = "run.json"
SUMMARY_FILE = "summary.json"
# What must be the same for a rerun to add to the answers already in --out.
RESUME_KEYS = ("questions_sha1", "target", "answer_mode", "k")


@dataclass
class BenchmarkRun:
    """Everything one `eval answers` run wrote: the settings, every answer, the summary."""

    out: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    failures: list[dict[str, Any]] = field(default_factory=list)
    answered_now: int = 0


def read_records(path: Path) -> dict[str, dict[str, Any]]:
    """The answers already in answers.jsonl, by id; the last line for an id wins. A line cut
    short by an interruption is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "id" in record:
            done[str(record["id"])] = record
    return done


def _earlier_manifest(folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The run.json of the run in `folder`, if any, after checking this run may add to it."""
    path = folder / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    for key in RESUME_KEYS:
        if key in before and before[key] != manifest.get(key):
            raise EvaluationError(
                f"{folder} holds a run with {key} = {before[key]!r}, this one has "
                f"{manifest.get(key)!r}; give another --out to start a new run"
            )
    return before if isinstance(before, dict) else {}


class Conversations:
    """The earlier turns of follow-up questions: the answers their questions got in this run,
    else asked now (unscored) when the earlier question is not part of the run."""

    def __init__(self, questions: Sequence[Question], target: Target) -> None:
        self.by_id = {q.id: q for q in questions}
        self.target = target
        self.answers: dict[str, str] = {}

    def history(self, question: Question) -> History:
        turns: list[tuple[str, str]] = []
        for earlier in conversation(question, self.by_id):
            if earlier.id not in self.answers:
                said = (
                    self.target.answer(earlier.question, history=list(turns))
                    if turns
                    else self.target.answer(earlier.question)
                )
                self.answers[earlier.id] = said.answer
            turns.append((earlier.question, self.answers[earlier.id]))
        return turns


def run_benchmark(
    questions: Sequence[Question],
    target: Target,
    out: Path,
    *,
    manifest: dict[str, Any] | None = None,
    progress: bool = True,
    context: Sequence[Question] = (),
) -> BenchmarkRun:
    """Answer every question not already in `out`/answers.jsonl, appending one line each as
    it goes (so an interrupted run picks up where it stopped), then summarise them all.

    A follow-up (`follow_up_of`) is asked after the questions before it in its conversation,
    with their questions and answers as history; `context` holds those not in `questions`."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = {**(manifest or {}), **target.describe(), "questions": len(questions)}
    before = _earlier_manifest(out, manifest)
    # Each session (first run, resumptions) with the code that answered in it.
    session = {"started": manifest.get("started"), "version": manifest.get("version")}
    manifest["sessions"] = [*before.get("sessions", []), session]
    manifest["started"] = before.get("started", manifest.get("started"))
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    answers = out / ANSWERS_FILE
    by_id = {q.id: q for q in questions}
    # Answers from an earlier run are scored again, so every figure comes from this code.
    done = {
        i: question_record(
            by_id[i], Prediction.from_record(r), [tuple(t) for t in r.get("history") or []]
        )
        for i, r in read_records(answers).items()
        if i in by_id and not r.get("error")
    }
    conversations = Conversations([*context, *questions], target)
    conversations.answers.update({i: r["answer"] for i, r in done.items()})
    todo = [q for q in questions if q.id not in done]
    _end_cut_line(answers)
    failures: list[dict[str, Any]] = []
    with (
        answers.open("a", encoding="utf-8") as sink,
        tqdm(
            total=len(questions),
            initial=len(questions) - len(todo),
            unit="question",
            desc="answers",
            disable=not progress,
        ) as bar,
    ):
        for question in todo:
            try:
                history = conversations.history(question)
                prediction = (
                    target.answer(question.question, history=history)
                    if history
                    else target.answer(question.question)
                )
                record = question_record(question, prediction, history)
                done[question.id] = record
                conversations.answers[question.id] = prediction.answer
            except QuestionFailed as error:
                record = {"id": question.id, "question": question.question, "error": str(error)}
                failures.append(record)
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            sink.flush()
            bar.update(1)
    session["answered"] = len(todo) - len(failures)
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    records = [done[q.id] for q in questions if q.id in done]
    summary = summarise_answers(records, failed=len(failures))
    (out / SUMMARY_FILE).write_text(
        json.dumps({"run": manifest, **summary}, indent=2, ensure_ascii=False) + "\n"
    )
    return BenchmarkRun(
        out=out,
        manifest=manifest,
        records=records,
        summary=summary,
        failures=failures,
        answered_now=len(todo) - len(failures),
    )


def _end_cut_line(answers: Path) -> None:
    """End a line an interrupted write left open, so the next record stands alone."""
    if answers.exists() and answers.stat().st_size:
        with answers.open("rb") as existing:
            existing.seek(-1, 2)
            cut_short = existing.read(1) != b"\n"
        if cut_short:
            with answers.open("a", encoding="utf-8") as sink:
                sink.write("\n")


def _code_version() -> str:
    """The package version and, in a git checkout, the commit ("+changes" when edited)."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("news-assistant")
    except PackageNotFoundError:
        found = "unknown"
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        command = ["git", "-C", str(repo), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return found
    return f"{found} ({commit}{'+changes' if dirty else ''})"


def questions_manifest(source: QuestionFile, **options: Any) -> dict[str, Any]:
    """What a run was asked to do, for run.json and the report."""
    return {
        "version": _code_version(),
        "questions_file": str(source.path),
        "questions_sha1": source.sha1,
        "format": source.format,
        **options,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
