"""The assistant's Python API: one object that loads the store and model once per process."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from datetime import date
from functools import cached_property

from assistant.answer import (
    REFUSAL,
    Answer,
    ShortAnswer,
    StreamEvent,
    archive_span,
    format_date,
)
from assistant.chat import condense_question, is_follow_up
from assistant.citations import CitationChecker, Evidence, Numbering, SentenceVectors, check_stream
from assistant.config import Settings
from assistant.extractive import (
    SENTENCE_PASSAGES,
    Draft,
    compose,
    question_vectors_for,
)
from assistant.llm import Generator, LLMError, answer_messages, is_refusal
from assistant.query import DateRange, Mention, all_outside, asked_speaker, mentions_time
from assistant.retrieve import Filters, Passage, Retriever
from assistant.short_answer import ANSWER_PASSAGES, find_short_answers
from assistant.silence import archive_authors, archive_silence
from assistant.speakers import asks_for_words
from assistant.yes_no import Comparison, compare, is_yes_no
from index.archive import CorpusSummary, Index
from index.embedding import Embedder
from index.errors import ConfigError
from index.store import ChunkStore


class Engine:
    """Holds the settings, the archive's index and the retriever; safe to share across threads."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        store: ChunkStore | None = None,
    ) -> None:
        """`embedder` and `store` share ones already loaded (a model is loaded once per
        process); otherwise each is made from `settings` when first used."""
        self.settings = settings or Settings()
        self.index = Index(self.settings, store=store, embedder=embedder)
        # (corpus fingerprint, first and last publication day): read again only when it changes
        self._archive_days: tuple[str, tuple[date, date] | None] | None = None

    @property
    def store(self) -> ChunkStore:
        return self.index.store

    @property
    def embedder(self) -> Embedder:
        return self.index.embedder

    @property
    def mode(self) -> str:
        """How answers are written by default: "extractive", or "llm:<model>" with an LLM."""
        return self.generator.mode if self.generator else "extractive"

    def corpus_summary(self) -> CorpusSummary:
        """What the archive holds: articles, chunks, outlets, dates and titles."""
        return self.index.summary()

    @cached_property
    def retriever(self) -> Retriever:
        self.store.check_vectors()  # questions embedded as the chunks were, or an error
        return Retriever(self.settings, store=self.store, embedder=self.embedder)

    @cached_property
    def sentence_vectors(self) -> SentenceVectors:
        """Sentences are compared with the question and with each other, never with chunks, so
        they are embedded in fp32 whatever the chunks' precision: over int8 chunks, int8
        sentence vectors lost 3 of the demo set's 19 speaker answers (`eval answers --demo`)."""
        if self.embedder.precision == "fp32":
            return SentenceVectors(self.embedder)
        exact = self.settings.model_copy(update={"embedding_backend": "torch"})
        return SentenceVectors(Embedder(exact))  # questions on the fp32 ONNX graph on a CPU

    @cached_property
    def generator(self) -> Generator | None:
        """The configured LLM, or None when settings.llm_url is not set."""
        return Generator(self.settings) if self.settings.llm_url else None

    def _generator(self, use_llm: bool | None) -> Generator | None:
        if use_llm is False:
            return None
        if use_llm and self.generator is None:
            raise ConfigError("use_llm: no LLM configured; set llm_url (e.g. --llm-url)")
        return self.generator

    def search(
        self, question: str, *, k: int | None = None, filters: Filters | None = None
    ) -> list[Passage]:
        return self.retriever.search(question, k=k, filters=filters)

    def ask(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        filters: Filters | None = None,
        k: int | None = None,
        use_llm: bool | None = None,
    ) -> Answer:
        """Answer `question` (a follow-up to `history`'s (user, assistant) turns) with citations.

        use_llm: None uses the LLM iff settings.llm_url is set; False answers extractively."""
        for event in self.ask_stream(
            question, history=history, filters=filters, k=k, use_llm=use_llm
        ):
            if event.answer is not None:
                return event.answer
        raise AssertionError("ask_stream ended without an answer")  # pragma: no cover

    def ask_stream(
        self,
        question: str,
        *,
        history: Sequence[tuple[str, str]] = (),
        filters: Filters | None = None,
        k: int | None = None,
        use_llm: bool | None = None,
    ) -> Iterator[StreamEvent]:
        """The answer as it is made: "delta" events whose texts join to the final answer's text
        (each a whole checked sentence, never half a [n] marker), then one "answer" event."""
        started = time.perf_counter()
        timings: dict[str, float] = {}

        def lap(name: str, since: float) -> float:
            now = time.perf_counter()
            timings[name] = now - since
            return now

        generator = self._generator(use_llm)
        notes: list[str] = []
        standalone = self._standalone(question, history, generator, notes)
        mark = lap("condense", started)
        passages = self.search(standalone, k=k, filters=filters)
        mark = lap("retrieve", mark)
        speaker = asked_speaker(standalone)
        vectors = self.sentence_vectors.embed(question_vectors_for(standalone, speaker))
        shortlist = Evidence(passages[:SENTENCE_PASSAGES], self.sentence_vectors)
        parsed = self.retriever.understand(standalone)  # read once for every step below
        days = [
            (d.start, d.end)
            for d in parsed.dates
            if (d.end - d.start).days <= 7  # a day or a week, not "in 2023"
        ]
        draft = compose(standalone, shortlist, vectors, speaker=speaker, days=days)
        outlets = parsed.outlet_mentions
        mark = lap("compose", mark)

        answer = Answer(
            question=question,
            text="",
            citations=[],
            refused=False,
            mode="extractive",
            standalone_question=standalone,
            passages=passages,
            timings=timings,
            evidence_score=draft.evidence_score,
            notes=notes,
        )
        if generator is not None:
            answer.mode = generator.mode
        if span := self._dates_outside_archive(standalone, parsed.dates, draft):
            notes.append("the question asks about dates the archive does not cover")
            yield from _refuse(answer, span)
        elif silence := archive_silence(self.retriever, parsed):
            notes.append("the archive is silent on part of the question")
            yield from _refuse(answer, silence.reason)
        elif not draft.sentences or draft.evidence_score < self.settings.refusal_threshold:
            if generator is not None:
                notes.append("the articles found are too far from the question to ask the LLM")
            yield from _refuse(answer)
        elif draft.silent_speaker:
            notes.append(f"{draft.silent_speaker} says nothing on this in the articles found")
            yield from _refuse(answer)
        elif generator is None:
            yield from _extractive(answer, draft, outlets=outlets)
        else:
            try:
                evidence = Evidence(passages, self.sentence_vectors)
                yield from _generate(answer, generator, evidence)
                if not answer.refused:
                    _generated_short_answer(answer)
            except (LLMError, _NothingVerified) as error:
                notes.append(f"{error}; answered from the articles' own sentences instead")
                answer.mode = "extractive"
                yield from _extractive(answer, draft, outlets=outlets)
            lap("generate", mark)
        timings["total"] = time.perf_counter() - started
        yield StreamEvent("answer", answer=answer)

    def prepare_answers(self) -> None:
        """Read now what an answer's checks read from the whole archive (its first and last
        days, its authors), as each does once per state of it: at 1M chunks, 3 s the first
        question would otherwise wait."""
        self._archive_dates()
        archive_authors(self.retriever.view())

    def _dates_outside_archive(
        self, question: str, dates: Sequence[DateRange], draft: Draft
    ) -> str:
        """The archive's range as a sentence if the question asks only about days outside it
        (`dates`: those the question names)."""
        days = self._archive_dates()
        if days is None or not all_outside(dates, *days):
            return ""
        # Articles look back ("spent $26.3 billion in 2021"): an answer naming the time stands.
        # Only the answer's own sentences count: passages name other years in passing. Not so
        # for what someone said then ("What did the President say in 2019?"): that is dated
        # by when it was said, which is when the archive's articles were written.
        if not asks_for_words(question) and any(
            mentions_time(s.text, named) for s in draft.sentences for named in dates
        ):
            return ""
        return archive_span(*days)

    def _archive_dates(self) -> tuple[date, date] | None:
        """The first and last publication days, or None when no article has a date."""
        fingerprint = self.retriever.view().fingerprint
        cached = self._archive_days
        if cached is None or cached[0] != fingerprint:
            summary = self.index.summary()
            days = None
            if summary.first_date and summary.last_date:
                try:
                    days = (
                        date.fromisoformat(summary.first_date[:10]),
                        date.fromisoformat(summary.last_date[:10]),
                    )
                except ValueError:  # a date the loaders kept as written: no range to refuse on
                    days = None
            cached = self._archive_days = (fingerprint, days)
        return cached[1]

    def _standalone(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        generator: Generator | None,
        notes: list[str],
    ) -> str:
        """The question made standalone: by the LLM when there is one, else by rules."""
        if generator is not None and history and is_follow_up(question):
            try:
                condensed = generator.condense(question, history)
            except LLMError as error:
                notes.append(f"{error}; follow-up rewritten by rules instead")
            else:
                if condensed:
                    return condensed
        return condense_question(question, history)


_ORDERED = re.compile(r"\b(?:before|after)\b", re.I)


class _NothingVerified(Exception):
    """Nothing the LLM wrote survived the citation check (and nothing of it was shown)."""


def _refuse(answer: Answer, why: str = "") -> Iterator[StreamEvent]:
    answer.refused = True
    answer.text = f"{REFUSAL} {why}" if why else REFUSAL
    answer.citations = []
    yield StreamEvent("delta", text=answer.text)


def _extractive(
    answer: Answer, draft: Draft, *, outlets: Sequence[Mention] = ()
) -> Iterator[StreamEvent]:
    """The answer's own sentences, cited; led by the short answer ("17 June [1].") or, for a
    yes/no question comparing outlets, by their evidence side by side (and the verdict)."""
    numbering = Numbering()
    pieces: list[str] = []
    question = answer.standalone_question or answer.question
    passages = answer.passages[:ANSWER_PASSAGES]
    comparison = compare(question, passages, outlets) if is_yes_no(question) else None
    if comparison is not None:
        lead = _side_by_side(answer, comparison, numbering)
    else:
        lead = _short_answer_lead(answer, question, draft, passages, numbering)
    if lead:
        yield StreamEvent("delta", text=lead)
        pieces.append(lead)
    for sentence in draft.sentences:
        known = len(numbering.citations)
        number = numbering.number(sentence.passage, sentence.start, sentence.end)
        if number <= known and comparison is not None:
            continue  # already laid out beside the other side
        piece = f"{sentence.text} [{number}]"
        yield StreamEvent("delta", text=piece if not pieces else " " + piece)
        pieces.append(piece)
    answer.text = " ".join(pieces)
    answer.citations = numbering.citations


def _short_answer_lead(
    answer: Answer,
    question: str,
    draft: Draft,
    passages: Sequence[Passage],
    numbering: Numbering,
) -> str:
    """ "Sam Bankman-Fried [1]." (or both values where the passages disagree), setting
    answer.short_answers; "" when the question asks for no short answer or none is found."""
    cited = [(s.passage, s.start, s.end) for s in draft.sentences]
    found = find_short_answers(question, passages, cited)
    parts = []
    for item in found:
        start, end = item.sentence_start, item.sentence_end
        for passage, a, b in cited:  # the answer's own sentence holding it: the same [n]
            if passage.chunk_id == item.passage.chunk_id and a <= item.start and item.end <= b:
                start, end = a, b
                break
        number = numbering.number(item.passage, start, end)
        short = ShortAnswer(
            item.text,
            number,
            item.passage.article_offset(item.start),
            item.passage.article_offset(item.end),
            item.kind,
        )
        answer.short_answers.append(short)
        parts.append(f"{item.text} [{number}]")
    if len(parts) > 1:
        return f"The articles differ: {parts[0]} or {parts[1]}."
    return f"{parts[0]}." if parts else ""


def _generated_short_answer(answer: Answer) -> None:
    """The short answer of an LLM's answer: a span of the right kind that the answer says and
    that lies inside one of its checked citations' quotes (so it is checked like any claim)."""
    cited = [
        (c.passage, c.passage_offset, c.passage_offset + len(c.quote)) for c in answer.citations
    ]
    passages = [c.passage for c in answer.citations]
    found = find_short_answers(answer.standalone_question, passages, cited, only_cited=True)
    for item in found[:1]:
        for citation, (passage, a, b) in zip(answer.citations, cited, strict=True):
            inside = passage.chunk_id == item.passage.chunk_id and a <= item.start < item.end <= b
            if inside and item.text.lower() in answer.text.lower():
                start = item.passage.article_offset(item.start)
                end = item.passage.article_offset(item.end)
                answer.short_answers = [
                    ShortAnswer(item.text, citation.number, start, end, item.kind)
                ]
                return


def _side_by_side(answer: Answer, comparison: Comparison, numbering: Numbering) -> str:
    """ "Yes, by the dates. TechCrunch (3 Oct 2023): ... [1] Fortune (5 Oct 2023): ... [2]"."""
    pieces = []
    for side in comparison.sides:
        number = numbering.number(side.passage, side.start, side.end)
        when = format_date(side.passage.published)
        label = f"{side.label} ({when})" if when else side.label
        text = " ".join(side.passage.text[side.start : side.end].split())
        pieces.append(f"{label}: {text} [{number}]")
    first = comparison.sides[0]
    if comparison.order:
        answer.short_answers.append(
            ShortAnswer(
                comparison.order.capitalize(),
                1,
                first.passage.article_offset(first.start),
                first.passage.article_offset(first.end),
                "choice",
            )
        )
        pieces.insert(0, f"{comparison.order.capitalize()} [1], by the articles' dates.")
    elif comparison.verdict:
        answer.verdict = comparison.verdict
        if _ORDERED.search(answer.standalone_question or answer.question):
            why = "by the articles' dates"
        elif comparison.verdict == "yes":
            why = "each part is found in the articles"
        else:
            why = "a part is not found in the articles"
        pieces.insert(0, f"{comparison.verdict.capitalize()}, {why}.")
    return " ".join(pieces)


def _generate(answer: Answer, generator: Generator, evidence: Evidence) -> Iterator[StreamEvent]:
    """Stream the LLM's answer sentence by sentence, each checked against its sources."""
    checker = CitationChecker(evidence)
    pieces: list[str] = []
    said_refusal = False
    stream = generator.stream(answer_messages(answer.standalone_question, evidence.passages))
    try:
        for checked in check_stream(stream, checker, skip=is_refusal):
            answer.notes.extend(checked.notes)
            if checked.skipped:
                said_refusal = True
                continue
            if checked.text is None:
                continue
            yield StreamEvent("delta", text=checked.text if not pieces else " " + checked.text)
            pieces.append(checked.text)
            answer.text = " ".join(pieces)
    except LLMError as error:
        if not pieces:
            raise  # nothing shown yet: the caller answers extractively instead
        answer.notes.append(f"{error}; the answer stops there")
    if not pieces:
        if said_refusal:
            yield from _refuse(answer)  # the LLM read the sources and found no answer
            return
        raise _NothingVerified("no sentence of the LLM's answer was backed by the sources")
    answer.citations = checker.numbering.citations
