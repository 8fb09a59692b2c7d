"""embedding_dtype: bf16 arithmetic where native, vectors within 1e-4 cosine of fp32's, which
keep torch fp32's identity (model id, caches, collections)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index import embedding
from index.config import IndexSettings
from index.embedding import Embedder, resolve_dtype, vectors_update
from index.errors import ConfigError
from index.store import ChunkStore

TEXTS = [
    "The White House said on Friday that talks with Moscow would continue.",
    "Lavrov told reporters the security guarantees were not negotiable.",
    "Who won the 2023 Super Bowl?",
    "Shares fell 3% after the quarterly results missed forecasts. " * 20,  # past 256 wordpieces
]
SAME_VECTORS = 1e-4  # max cosine distance of vectors that count as the same (index/embedding.py)


def _settings(dtype: str, storage: Path = Path("storage")) -> IndexSettings:
    return IndexSettings(
        storage_dir=storage,
        embedding_backend="torch",
        embedding_device="cpu",
        embedding_dtype=dtype,
        query_backend="torch",  # torch's arithmetic, questions too
        keyword_sync_seconds=0,
    )


@pytest.fixture(scope="module")
def fp32() -> Embedder:
    return Embedder(_settings("fp32"))


@pytest.fixture(scope="module")
def bf16() -> Embedder:
    return Embedder(_settings("bf16"))


def test_bf16_vectors_are_fp32_vectors_within_1e4(fp32: Embedder, bf16: Embedder) -> None:
    exact = fp32.embed(TEXTS)
    with bf16.bulk_threads():  # as an ingest embeds
        fast = bf16.embed(TEXTS)
    assert fast.dtype == np.float32 and fast.shape == exact.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-6)
    distance = 1.0 - np.sum(exact * fast, axis=1)
    assert distance.max() < SAME_VECTORS
    assert distance.max() > 1e-7  # bf16 really ran: not the fp32 numbers


def test_fp32_is_plain_fp32_and_questions_stay_fp32(fp32: Embedder, bf16: Embedder) -> None:
    assert (fp32.dtype, bf16.dtype) == ("fp32", "bf16")
    plain = fp32.model.encode(TEXTS[:2], normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_array_equal(fp32.embed(TEXTS[:2]), plain)  # no autocast, no renormalising
    # Questions stay fp32 (answers do not move); a bulk job runs in bf16.
    np.testing.assert_array_equal(bf16.embed_query(TEXTS[2]), fp32.embed_query(TEXTS[2]))
    with bf16.bulk_threads():
        bulk = bf16.embed([TEXTS[2]])[0]
    assert 0 < 1.0 - float(bulk @ fp32.embed_query(TEXTS[2])) < SAME_VECTORS
    # The bulk job ran a bf16 copy; the model that questions use is still fp32.
    import torch

    assert {p.dtype for p in bf16.bf16_model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in bf16.model.parameters()} == {torch.float32}
    np.testing.assert_array_equal(bf16.embed_query(TEXTS[2]), fp32.embed_query(TEXTS[2]))


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_where_native(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(embedding, "native_bf16", lambda device: native)
    expected = "bf16" if native else "fp32"
    assert resolve_dtype("auto", "torch", "cpu") == resolve_dtype("auto", "torch", "cuda")
    assert Embedder(_settings("auto")).dtype == expected
    assert resolve_dtype("fp32", "torch", "cpu") == "fp32"  # explicit settings win
    assert resolve_dtype("bf16", "torch", "cpu") == "bf16"
    assert resolve_dtype("auto", "onnx", "cpu") == resolve_dtype("auto", "onnx-int8", "cpu")
    assert resolve_dtype("auto", "onnx", "cpu") == "fp32"  # onnx runs its own precision


def test_bf16_is_for_torch_only() -> None:
    with pytest.raises(ConfigError, match="embedding_dtype=bf16"):
        resolve_dtype("bf16", "onnx", "cpu")


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ({"avx512_bf16": True, "amx_bf16": False}, True),
        ({"avx512_bf16": False, "amx_bf16": True}, True),
        ({"avx512_bf16": False, "amx_bf16": False, "avx512_bw": True}, False),  # emulated only
    ],
)
def test_native_bf16_reads_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch, flags: dict[str, bool], native: bool
) -> None:
    import torch

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"architecture": "x86_64", **flags})
    assert embedding.native_bf16("cpu") is native


def test_bf16_keeps_fp32_identity_and_shares_its_collection(
    tmp_path: Path, fp32: Embedder, bf16: Embedder
) -> None:
    assert bf16.identity == fp32.identity
    assert bf16.identity["embedding_precision"] == "fp32"
    assert bf16.model_id == fp32.model_id  # the shipped fp32 vector caches stay valid
    assert vectors_update("news", {**fp32.identity, "generation": "x"}, 5, bf16.identity) is None

    vectors = np.eye(2, 384, dtype=np.float32)
    for dtype, article in (("fp32", "a1"), ("bf16", "a2")):
        store = ChunkStore(_settings(dtype, tmp_path))
        store.write(
            ids=[f"{article}-0", f"{article}-1"],
            vectors=vectors,
            documents=["one chunk", "another chunk"],
            metadatas=[{"article_id": article, "chunk": i, "title": article} for i in range(2)],
        )
        recorded = store._client.get_collection("news").metadata
        assert recorded["embedding_backend"] == "torch"
        assert recorded["embedding_precision"] == "fp32"
        assert store.count() == {"a1": 2, "a2": 4}[article]
        del store
