"""What answers the questions: the engine in this process or a server's HTTP API, as Predictions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.engine import Engine
from evaluation import metrics
from evaluation.errors import EvaluationError, QuestionFailed
from evaluation.metrics import DEPTH


@dataclass
class Prediction:
    """One answer as the evaluation keeps it: the same whether it came in-process or by HTTP."""

    answer: str
    refused: bool
    mode: str
    citations: list[dict[str, Any]]  # number, article_id, title, url, quote, passage
    passages: list[dict[str, Any]]  # ranked: chunk_id, article_id, title, url, source, text
    latency_s: float
    first_token_s: float
    # {text, citation, quote_start, quote_end, kind}: the answer in a few words, if it gave one
    short_answer: dict[str, Any] | None = None
    short_answers: list[dict[str, Any]] = field(default_factory=list)
    verdict: str | None = None  # "yes" or "no" where the answer states one

    @classmethod
    def from_answer(
        cls, data: dict[str, Any], latency_s: float, first_token_s: float
    ) -> Prediction:
        """From Answer.as_dict(), which is also the body of POST /api/ask."""
        return cls(
            answer=str(data["answer"]),
            refused=bool(data["refused"]),
            mode=str(data.get("mode", "")),
            citations=[
                {k: c.get(k, "") for k in ("number", "article_id", "title", "url", "quote")}
                | {"passage": c.get("passage", "")}
                for c in data.get("citations", [])
            ],
            passages=[
                {
                    k: p.get(k, "")
                    for k in ("chunk_id", "article_id", "title", "url", "source", "published")
                }
                | {"text": p.get("text", "")}
                for p in data.get("passages", [])
            ],
            latency_s=latency_s,
            first_token_s=first_token_s,
            short_answer=data.get("short_answer") or None,
            short_answers=list(data.get("short_answers") or []),
            verdict=data.get("verdict") or None,
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prediction:
        """Back from a line of answers.jsonl (lines written before short answers too)."""
        return cls(
            answer=record["answer"],
            refused=record["refused"],
            mode=record["mode"],
            citations=record["citations"],
            passages=record["passages"],
            latency_s=record["latency_s"],
            first_token_s=record["first_token_s"],
            short_answer=record.get("short_answer") or None,
            short_answers=list(record.get("short_answers") or []),
            verdict=record.get("verdict") or None,
        )

    @property
    def short_text(self) -> str:
        """The short answer, or else the answer's first sentence ("" when refused)."""
        if self.refused:
            return ""
        if self.short_answer and str(self.short_answer.get("text", "")).strip():
            return str(self.short_answer["text"])
        return metrics.first_sentence(self.answer)


MAX_TURN_CHARS = 20_000  # what /api/ask takes of one earlier message
History = Sequence[tuple[str, str]]  # earlier (question, answer) turns of a conversation


class Target(Protocol):
    """What answers the questions: the engine in this process, or a server."""

    def answer(self, question: str, history: History = ()) -> Prediction: ...
    def describe(self) -> dict[str, Any]: ...


class InProcessTarget:
    """Engine.ask_stream; the first token is the first "delta" event."""

    def __init__(self, engine: Engine, *, k: int = DEPTH, use_llm: bool | None = None) -> None:
        self.engine, self.k, self.use_llm = engine, k, use_llm

    def answer(self, question: str, history: History = ()) -> Prediction:
        started = time.perf_counter()
        first: float | None = None
        final = None
        events = self.engine.ask_stream(question, history=history, k=self.k, use_llm=self.use_llm)
        for event in events:
            if event.kind == "delta" and first is None:
                first = time.perf_counter() - started
            elif event.answer is not None:
                final = event.answer
        latency = time.perf_counter() - started
        assert final is not None
        return Prediction.from_answer(final.as_dict(), latency, latency if first is None else first)

    def describe(self) -> dict[str, Any]:
        settings = self.engine.settings
        return {
            "target": "in-process",
            "k": self.k,
            "answer_mode": "extractive"
            if self.use_llm is False or not settings.llm_url
            else f"llm:{settings.llm_model}",
            "llm_url": settings.llm_url if self.use_llm is not False else None,
            "index": str(settings.storage_dir),
            "collection": settings.collection,
            "chunk_tokens": settings.chunk_tokens,
            "chunk_overlap": settings.chunk_overlap,
            "refusal_threshold": settings.refusal_threshold,
        }


class HttpTarget:
    """POST /api/ask on a running server. It is not streamed, so the time to the first token
    is the time to the whole response (the OpenAI-compatible stream carries no passages)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        k: int = DEPTH,
        use_llm: bool | None = None,
        timeout: float = 300.0,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.k, self.use_llm = k, use_llm
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.health: dict[str, Any] = {}

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise EvaluationError(f"{self.url}{path}: cannot reach the server: {error}") from None
        if response.status_code in (401, 403):
            raise EvaluationError(
                f"{self.url}{path}: {response.status_code}: the server wants an API token "
                "(--token); the one given, if any, is not it"
            )
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise QuestionFailed(f"HTTP {response.status_code}: {message}")
        return response.json()

    def check(self) -> dict[str, Any]:
        """The server's /api/health: that it answers, what it holds, its answer mode."""
        try:
            self.health = self._request("GET", "/api/health")
        except QuestionFailed as error:
            raise EvaluationError(f"{self.url}/api/health: {error}") from None
        return self.health

    def answer(self, question: str, history: History = ()) -> Prediction:
        body: dict[str, Any] = {"question": question, "k": self.k}
        if history:
            body["history"] = [
                {"role": role, "content": text[:MAX_TURN_CHARS]}
                for asked, said in history
                for role, text in (("user", asked), ("assistant", said))
            ]
        if self.use_llm is not None:
            body["use_llm"] = self.use_llm
        started = time.perf_counter()
        data = self._request("POST", "/api/ask", json=body)
        latency = time.perf_counter() - started
        return Prediction.from_answer(data, latency, latency)

    def describe(self) -> dict[str, Any]:
        mode = self.health.get("mode", "server default")
        return {
            "target": self.url,
            "k": self.k,
            "answer_mode": "extractive" if self.use_llm is False else mode,
            "server": self.health,
            "first_token": "time to the whole /api/ask response (not streamed)",
        }

    def close(self) -> None:
        self.client.close()
