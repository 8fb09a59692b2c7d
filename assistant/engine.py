"""The assistant's Python API: one object that loads the store and model once per process."""

from __future__ import annotations

from functools import cached_property

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

    def search(
        self, question: str, *, k: int | None = None, filters: Filters | None = None
    ) -> list[Passage]:
        return self.retriever.search(question, k=k, filters=filters)
