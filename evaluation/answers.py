"""`eval answers`: a question file run through the assistant (in this process or over a server's
HTTP API), every answer scored against its gold answer and evidence, resumably.

The parts: `questions` (the file), `targets` (what answers), `scoring`, `runs` (the resumable
run and its files), `corpus` (the evaluation's own index), `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.engine import Engine
from evaluation.corpus import DEFAULT_CORPUS, DEMO, EvalCorpus, eval_engine, unmatched_evidence
from evaluation.errors import EvaluationError
from evaluation.metrics import DEPTH
from evaluation.questions import DEMO_QUERIES, load_questions, select_questions
from evaluation.runs import BenchmarkRun, questions_manifest, run_benchmark
from evaluation.targets import HttpTarget, InProcessTarget


def run_answer_eval(
    *,
    engine: Engine,
    questions_path: Path,
    out: Path,
    corpus: Path | str | None = None,
    url: str | None = None,
    token: str | None = None,
    k: int = DEPTH,
    use_llm: bool | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[BenchmarkRun, list[str]]:
    """The whole `eval answers` run: read and select the questions, then answer them with an
    engine over the corpus's evaluation index or with the server at `url`; returns the run
    and notes for the user. `corpus` "demo" is the bundled demo corpus (the default for its
    question file)."""
    source = load_questions(questions_path)
    questions = select_questions(source.questions, sample=sample, seed=seed, limit=limit)
    options: dict[str, Any] = {"limit": limit, "sample": sample, "seed": seed}
    notes: list[str] = []
    target: InProcessTarget | HttpTarget
    if url:
        target = HttpTarget(url, token=token, k=k, use_llm=use_llm)
        target.check()
    else:
        if corpus is None and source.format == "multihop-rag":
            corpus = DEFAULT_CORPUS
        if corpus is None and questions_path.resolve() == DEMO_QUERIES.resolve():
            corpus = DEMO
        if corpus is None:
            raise EvaluationError("--corpus: give the articles the questions are about")
        articles = EvalCorpus.of(corpus, engine.embedder.model_id)
        local = eval_engine(engine, articles, progress=progress)
        options["corpus"] = articles.label
        missing = unmatched_evidence(questions, local)
        if missing:
            notes.append(
                f"{len(missing)} evidence article(s) match no indexed article by id, URL or "
                f"title and will count as never cited, e.g. {missing[0]}"
            )
        target = InProcessTarget(local, k=k, use_llm=use_llm)
    try:
        # The first answer loads indexes and models; it is not one of the timed ones.
        target.answer("warm-up: what happened this week?")
        run = run_benchmark(
            questions,
            target,
            out,
            manifest=questions_manifest(source, **options),
            progress=progress,
            context=source.questions,
        )
    finally:
        if isinstance(target, HttpTarget):
            target.close()
    return run, notes
