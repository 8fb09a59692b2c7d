"""The assistant's Python API: one object that loads the store and model once per process."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from functools import cached_property

from assistant.answer import REFUSAL, Answer, StreamEvent
from assistant.chat import condense_question
from assistant.citations import Evidence, Numbering, SentenceVectors
from assistant.extractive import Draft, asked_speaker, compose, question_vectors_for
from assistant.retrieve import Filters, Passage, Retriever
from index.config import Settings
from index.embedding import Embedder
from index.store import ChunkStore


class Engine:
    """Holds the settings, the store, the model and the retriever; safe to share across threads."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()  # type: ignore[call-arg]

    @cached_property
    def store(self) -> ChunkStore:
        return ChunkStore(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(self.settings)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.settings, store=self.store, embedder=self.embedder)

    @cached_property
    def sentence_vectors(self) -> SentenceVectors:
        return SentenceVectors(self.embedder)

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

        standalone = condense_question(question, history)
        mark = lap("condense", started)
        passages = self.search(standalone, k=k, filters=filters)
        mark = lap("retrieve", mark)
        evidence = Evidence(passages, self.sentence_vectors)
        speaker = asked_speaker(standalone)
        vectors = self.sentence_vectors.embed(question_vectors_for(standalone, speaker))
        draft = compose(standalone, evidence, vectors, speaker=speaker)
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
        )
        if not draft.sentences or draft.evidence_score < self.settings.refusal_threshold:
            yield from _refuse(answer)
        else:
            yield from _extractive(answer, draft)
        timings["total"] = time.perf_counter() - started
        yield StreamEvent("answer", answer=answer)


def _refuse(answer: Answer) -> Iterator[StreamEvent]:
    answer.refused = True
    answer.text = REFUSAL
    answer.citations = []
    yield StreamEvent("delta", text=REFUSAL)


def _extractive(answer: Answer, draft: Draft) -> Iterator[StreamEvent]:
    numbering = Numbering()
    pieces: list[str] = []
    for sentence in draft.sentences:
        number = numbering.number(sentence.passage, sentence.start, sentence.end)
        piece = f"{sentence.text} [{number}]"
        yield StreamEvent("delta", text=piece if not pieces else " " + piece)
        pieces.append(piece)
    answer.text = " ".join(pieces)
    answer.citations = numbering.citations
