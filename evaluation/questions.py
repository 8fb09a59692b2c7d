"""Benchmark questions, their gold answers and evidence: MultiHop-RAG files or the generic one."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from news_assistant_data import DEMO_DIR, MULTIHOP_DIR

from evaluation import metrics
from evaluation.errors import EvaluationError
from index.articles import article_id as stored_article_id

DEFAULT_QUERIES = MULTIHOP_DIR / "queries-dev.json"
DEMO_QUERIES = DEMO_DIR / "questions.jsonl"  # questions over the bundled demo corpus
NULL_TYPE = "null_query"  # MultiHop-RAG's questions the corpus cannot answer


@dataclass(frozen=True, slots=True)
class GoldEvidence:
    """One piece of gold evidence: a quoted fact, the article it is from, or both."""

    fact: str = ""
    title: str = ""
    url: str = ""
    article_id: str = ""
    source: str = ""
    published: str = ""

    @property
    def article_key(self) -> str:
        """What tells this evidence's article from another ("" when none is named)."""
        return self.url or self.article_id or self.title

    def is_article(self, *, title: str, url: str, article_id: str) -> bool:
        """Whether an indexed article is this evidence's: by URL or title; or by an id, which
        may also be the article's URL or title, the id the index stores, or the id the
        corpus file gave an article without a URL (the index stores a hash of it)."""
        if metrics.same_article(
            title=title,
            url=url,
            article_id=article_id,
            gold_title=self.title,
            gold_url=self.url,
            gold_id=self.article_id,
        ):
            return True
        if not self.article_id:
            return False
        given = stored_article_id(url="", title="", body="", given=self.article_id)
        return metrics.same_article(
            title=title,
            url=url,
            article_id=article_id,
            gold_title=self.article_id,
            gold_url=self.article_id,
            gold_id=given,
        )


@dataclass(frozen=True, slots=True)
class Question:
    """A benchmark question with its gold answers and evidence."""

    id: str
    question: str
    answers: tuple[str, ...]
    question_type: str
    evidence: tuple[GoldEvidence, ...] = ()
    must_contain: tuple[str, ...] = ()  # phrases the answer must contain (any case)
    must_not_contain: tuple[str, ...] = ()  # phrases it must not (a reporter's question, say)
    follow_up_of: str = ""  # the id of the question this one follows in a conversation

    @property
    def facts(self) -> list[str]:
        return [e.fact for e in self.evidence if e.fact]

    @property
    def unanswerable(self) -> bool:
        """Whether the gold answer is "Insufficient information" (a refusal is right)."""
        return any(metrics.is_no_answer(a) for a in self.answers)


@dataclass(frozen=True, slots=True)
class QuestionFile:
    path: Path
    format: str  # "multihop-rag" or "generic"
    questions: list[Question]
    sha1: str


def _text(value: object, where: str, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise EvaluationError(
            f"{where}: field '{name}': expected text, found {type(value).__name__}"
        )
    return str(value).strip()


def _evidence(value: object, where: str) -> GoldEvidence:
    if isinstance(value, str):
        return GoldEvidence(fact=value)
    if not isinstance(value, dict):
        raise EvaluationError(f"{where}: field 'evidence': items are texts or objects")
    return GoldEvidence(
        fact=_text(value.get("fact", value.get("text")), where, "evidence.fact"),
        title=_text(value.get("title"), where, "evidence.title"),
        url=_text(value.get("url"), where, "evidence.url"),
        article_id=_text(value.get("article_id", value.get("id")), where, "evidence.article_id"),
        source=_text(value.get("source"), where, "evidence.source"),
        published=_text(
            value.get("published_at", value.get("published")), where, "evidence.published"
        ),
    )


def _list(value: object, where: str, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvaluationError(f"{where}: field '{name}': expected a list")
    return value


def _phrases(value: object, where: str, name: str) -> tuple[str, ...]:
    """A text or a list of texts, none empty."""
    items = [value] if isinstance(value, str) else _list(value, where, name)
    phrases = tuple(_text(item, where, name) for item in items)
    if any(not phrase for phrase in phrases):
        raise EvaluationError(f"{where}: field '{name}': empty phrase")
    return phrases


def question_from_record(
    record: object, where: str, default_id: str, *, require_answers: bool = True
) -> Question:
    """One record of a question file: generic ({question, answer | answers, evidence,
    article_ids, question_type}) or MultiHop-RAG ({query, answer, evidence_list, ...})."""
    if not isinstance(record, dict):
        raise EvaluationError(f"{where}: expected a JSON object")
    question = _text(record.get("question", record.get("query")), where, "question")
    if not question:
        raise EvaluationError(f"{where}: field 'question': missing or empty")
    given = record.get("answers", record.get("answer"))
    answers = [
        _text(a, where, "answers")
        for a in (given if isinstance(given, list) else [given] if given is not None else [])
    ]
    answers = [a for a in answers if a]
    if not answers and record.get("unanswerable") is True:  # {"unanswerable": true}: refuse
        answers = [metrics.NO_ANSWER]
    must_contain = _phrases(record.get("must_contain"), where, "must_contain")
    if not answers and not must_contain and require_answers:
        raise EvaluationError(
            f"{where}: field 'answer': missing or empty (or give 'answers' or 'must_contain')"
        )
    evidence = [
        _evidence(item, where)
        for item in _list(record.get("evidence", record.get("evidence_list")), where, "evidence")
    ]
    evidence += [
        GoldEvidence(article_id=_text(item, where, "article_ids"))
        for item in _list(record.get("article_ids"), where, "article_ids")
    ]
    kind = record.get("question_type", record.get("type"))
    return Question(
        id=_text(record.get("id"), where, "id") or default_id,
        question=question,
        answers=tuple(answers),
        question_type=_text(kind, where, "question_type") or "all",
        evidence=tuple(e for e in evidence if e.fact or e.article_key),
        must_contain=must_contain,
        must_not_contain=_phrases(record.get("must_not_contain"), where, "must_not_contain"),
        follow_up_of=_text(record.get("follow_up_of"), where, "follow_up_of"),
    )


def _records(path: Path, text: str) -> list[tuple[object, str, str]]:
    """(record, where it is, its default id) for each question: one a line in JSON Lines, or
    the items of a JSON list."""
    records: list[tuple[object, str, str]] = []
    if path.suffix.lower() == ".jsonl" or text.lstrip().startswith("{"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((json.loads(line), f"{path}:{number}", f"q{number}"))
            except json.JSONDecodeError as error:
                raise EvaluationError(f"{path}:{number}: not JSON: {error.msg}") from None
        return records
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as error:
        raise EvaluationError(f"{path}:{error.lineno}: not JSON: {error.msg}") from None
    if not isinstance(rows, list):
        raise EvaluationError(f"{path}: expected a list of questions (or JSON Lines)")
    return [(row, f"{path}: item {i}", f"q{i}") for i, row in enumerate(rows)]


def load_questions(path: Path, *, require_answers: bool = True) -> QuestionFile:
    """Read a question file: JSON Lines (one question a line) or a JSON list (MultiHop-RAG's
    files, or the generic records in a list). Retrieval alone needs no gold answers
    (`require_answers=False`)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise EvaluationError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise EvaluationError(f"{path}: not UTF-8 text ({error.reason})") from None
    records = _records(path, text)
    questions = [
        question_from_record(record, where, default, require_answers=require_answers)
        for record, where, default in records
    ]
    if not questions:
        raise EvaluationError(f"{path}: no questions")
    seen: dict[str, str] = {}
    for (_, where, _), q in zip(records, questions, strict=True):
        if q.id in seen:
            raise EvaluationError(f"{where}: id {q.id!r} also at {seen[q.id]}")
        if q.follow_up_of and q.follow_up_of not in seen:
            raise EvaluationError(
                f"{where}: field 'follow_up_of': no earlier question has the id {q.follow_up_of!r}"
            )
        seen[q.id] = where
    upstream = all(isinstance(r, dict) and "evidence_list" in r for r, _, _ in records)
    return QuestionFile(
        path=path,
        format="multihop-rag" if upstream else "generic",
        questions=questions,
        sha1=hashlib.sha1(data).hexdigest(),
    )


def conversation(question: Question, by_id: dict[str, Question]) -> list[Question]:
    """The questions asked before `question` in its conversation, first first."""
    earlier: list[Question] = []
    while question.follow_up_of and question.follow_up_of in by_id:
        question = by_id[question.follow_up_of]
        earlier.insert(0, question)
    return earlier


def select_questions(
    questions: Sequence[Question],
    *,
    sample: int | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> list[Question]:
    """A seeded random `sample` (kept in file order), then the first `limit`."""
    chosen = list(questions)
    if sample is not None and sample < len(chosen):
        keep = set(random.Random(seed).sample(range(len(chosen)), sample))
        chosen = [q for i, q in enumerate(chosen) if i in keep]
    return chosen[:limit] if limit is not None else chosen
