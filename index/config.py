"""Settings shared by the build side and the query side, read from env vars and a TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "NEWS_ASSISTANT_"
DEFAULT_CONFIG_FILE = "news-assistant.toml"


def _config_file() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}CONFIG", DEFAULT_CONFIG_FILE))


class Settings(BaseSettings):
    """Every knob of the product; env vars NEWS_ASSISTANT_* override the TOML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True
    )

    storage_dir: Path = Field(Path("storage"), description="Where Chroma and derived indexes live.")
    collection: str = Field("news", description="Chroma collection holding the chunks.")
    chroma_host: str | None = Field(None, description="Use a `chroma run` server at this host.")
    chroma_port: int = Field(8000, ge=1, le=65535)

    model_path: str | None = Field(
        None, description="Sentence-transformers model folder; default: the bundled MiniLM."
    )
    embed_batch_size: int = Field(32, ge=1, le=1024)
    # Under concurrent load one thread per query is many times faster than two (measured in
    # bench/answer.py and bench/load.py); bulk ingest wants every core.
    torch_threads: int = Field(1, ge=0, description="Threads for queries; 0: torch's default.")
    ingest_threads: int = Field(0, ge=0, description="Threads for bulk embedding; 0: all cores.")

    chunk_tokens: int = Field(220, ge=32, le=254, description="Wordpieces per chunk (MiniLM).")
    chunk_overlap: int = Field(40, ge=0, le=128, description="Wordpieces carried into the next.")

    top_k: int = Field(8, ge=1, le=50)
    candidates: int = Field(60, ge=10, le=500, description="Per-retriever pool before fusion.")
    rrf_k: int = Field(60, ge=1)
    keyword_sync_seconds: float = Field(
        1.0, ge=0, description="How often a reader asks Chroma whether others wrote to it."
    )

    llm_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://host/v1.")
    llm_model: str = "default"
    # Secrets stay out of repr() and str(), and so out of logs and test failure reports.
    llm_api_key: str | None = Field(None, repr=False)
    llm_timeout: float = Field(120.0, gt=0)
    llm_max_tokens: int = Field(512, ge=16, le=8192, description="Longest generated answer.")
    # Below this evidence score (0.7 x cosine of question and best sentence + 0.3 x share of
    # the question's words in it) the assistant refuses. bench/refusal.py on MultiHop-RAG's 505
    # dev queries (59 null), with excerpts: refusal precision 0.917, recall 0.746 (F1 0.822,
    # best of 0.20-0.60), 4 of 446 answerable queries refused; score AUC 0.976. Tuned on those
    # same queries.
    refusal_threshold: float = Field(0.34, ge=0, le=1)

    demo_on_empty: bool = Field(True, description="The web app builds the demo index if empty.")
    concurrency: int = Field(4, ge=1, le=64, description="Answers the web app computes at once.")
    max_request_bytes: int = Field(
        65536, ge=1024, description="Largest request body the HTTP API reads."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Other sites allowed to call the API; empty: none."
    )
    api_token: str | None = Field(
        None, repr=False, description="Bearer token required on /api and /v1."
    )
    ui_auth: str | None = Field(
        None, repr=False, description="'user:password' login for the web UI."
    )

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        if not (3 <= len(value) <= 63) or not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("collection: 3-63 letters, digits, '-' or '_'")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some fields changed (settings are frozen)."""
        return self.model_copy(update=changes)

    @property
    def chroma_dir(self) -> Path:
        return self.storage_dir / "chroma"

    @property
    def keyword_dir(self) -> Path:
        return self.storage_dir / "keyword"


def quiet_offline_environment() -> None:
    """Keep libraries from reaching model hubs or analytics hosts; the product is offline."""
    for name, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }.items():
        os.environ.setdefault(name, value)
