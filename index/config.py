"""The build side's settings (storage, Chroma, model, chunking), read from env vars and a TOML file.

Each layer adds its own fields to these: `assistant.config.Settings` the query side's,
`serving.config.AppSettings` the front ends'. All share the `NEWS_ASSISTANT_*` variables and one
TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

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


class IndexSettings(BaseSettings):
    """Where the archive lives and how it is built; NEWS_ASSISTANT_* variables override the TOML."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True
    )

    storage_dir: Path = Field(Path("storage"), description="Where Chroma and derived indexes live.")
    collection: str = Field("news", description="Chroma collection holding the chunks.")
    chroma_host: str | None = Field(None, description="Use a `chroma run` server at this host.")
    chroma_port: int = Field(8000, ge=1, le=65535, description="Port of that server.")

    model_path: str | None = Field(
        None, description="Sentence-transformers model folder; default: the bundled MiniLM."
    )
    embed_batch_size: int = Field(32, ge=1, le=1024, description="Chunks embedded per batch.")
    # Under concurrent load one thread per query is many times faster than two (measured in
    # bench/answer.py and bench/load.py); bulk ingest wants every core.
    torch_threads: int = Field(1, ge=0, description="Threads for queries; 0: torch's default.")
    ingest_threads: int = Field(0, ge=0, description="Threads for bulk embedding; 0: all cores.")
    # Measured in bench/embedding.py (docs/benchmarks.md, "Embedding backends").
    embedding_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "torch",
        description="torch, onnx (same vectors) or onnx-int8 (fastest bulk on a CPU; its own "
        "vectors, chosen when a collection is made); auto: torch.",
    )
    embedding_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the embedder runs; auto: cuda when torch sees a GPU."
    )
    query_backend: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="What embeds questions and sentences: torch or onnx (the same vectors); "
        "auto: onnx on a CPU when the chunks' vectors are fp32 (a question in half the time).",
    )
    embedding_dtype: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="torch's arithmetic for ingest: bf16 (a bf16 copy of the model; vectors "
        "within 1e-4 cosine of fp32's) or fp32; auto: bf16 where the hardware has it. "
        "Questions stay fp32.",
    )

    chunk_tokens: int = Field(220, ge=32, le=254, description="Wordpieces per chunk (MiniLM).")
    chunk_overlap: int = Field(40, ge=0, le=128, description="Wordpieces carried into the next.")

    keyword_sync_seconds: float = Field(
        1.0, ge=0, description="How often a reader asks Chroma whether others wrote to it."
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

    def with_changes(self, **changes: Any) -> Self:
        """A copy with some fields changed (settings are frozen)."""
        return self.model_copy(update=changes)

    @property
    def chroma_dir(self) -> Path:
        return self.storage_dir / "chroma"

    @property
    def keyword_dir(self) -> Path:
        return self.storage_dir / "keyword"


# Keep libraries from reaching model hubs or analytics hosts (the product is offline) and quiet.
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def quiet_offline_environment() -> None:
    """Set `OFFLINE_ENVIRONMENT` where the user has not; called by the entry points only."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
