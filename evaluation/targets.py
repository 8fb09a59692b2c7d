"""What answers the questions: the engine in this process or a server's HTTP API, as Predictions."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from assistant.engine import Engine
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
        )

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prediction:
        """Back from a line of answers.jsonl."""
        return cls(
            answer=record["answer"],
            refused=record["refused"],
            mode=record["mode"],
            citations=record["citations"],
            passages=record["passages"],
            latency_s=record["latency_s"],
            first_token_s=record["first_token_s"],
        )


class Target(Protocol):
    """What answers the questions: the engine in this process, or a server."""

    def answer(self, question: str) -> Prediction: ...
    def describe(self) -> dict[str, Any]: ...


class InProcessTarget:
    """Engine.ask_stream; the first token is the first "delta" event."""

    def __init__(self, engine: Engine, *, k: int = DEPTH, use_llm: bool | None = None) -> None:
        self.engine, self.k, self.use_llm = engine, k, use_llm

    def answer(self, question: str) -> Prediction:
        started = time.perf_counter()
        first: float | None = None
        final = None
        for event in self.engine.ask_stream(question, k=self.k, use_llm=self.use_llm):
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

    def answer(self, question: str) -> Prediction:
        body: dict[str, Any] = {"question": question, "k": self.k}
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
