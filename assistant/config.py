"""The query side's settings: retrieval depth, the LLM and when to refuse, over the index's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from index.config import IndexSettings


class Settings(IndexSettings):
    """What the engine needs: where the archive is, how to search it and how to answer."""

    top_k: int = Field(8, ge=1, le=50, description="Passages an answer draws on.")
    candidates: int = Field(60, ge=10, le=500, description="Per-retriever pool before fusion.")
    # hnsw: the same MultiHop-RAG dev results as exact; at 200k chunks 0.6 GB less RSS, a start
    # 7 s sooner (bench/scale.py --reuse; docs/benchmarks.md, "Dense search").
    dense_search: Literal["hnsw", "exact"] = Field(
        "hnsw", description="hnsw: Chroma's index, vectors fetched as needed; exact: all held."
    )

    llm_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://host/v1.")
    llm_model: str = Field("default", description="Model name sent to the LLM server.")
    # Secrets stay out of repr() and str(), and so out of logs and test failure reports.
    llm_api_key: str | None = Field(None, repr=False, description="Bearer key for the LLM server.")
    llm_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the LLM server.")
    llm_max_tokens: int = Field(512, ge=16, le=8192, description="Longest generated answer.")
    # Below this evidence score (0.7 x cosine of question and best sentence + 0.3 x share of
    # the question's words in it) the assistant refuses. bench/refusal.py on MultiHop-RAG's 505
    # dev queries (59 null), with excerpts: refusal precision 0.917, recall 0.746 (F1 0.822,
    # best of 0.20-0.60), 4 of 446 answerable queries refused; score AUC 0.976. Tuned on those
    # same queries.
    refusal_threshold: float = Field(
        0.34, ge=0, le=1, description="Evidence score below which the assistant refuses."
    )
