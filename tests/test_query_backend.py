"""query_backend: questions embedded by ONNX while torch embeds the chunks, the same vectors;
never a backend of another precision; torch again where the export cannot be used."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from index.config import IndexSettings
from index.embedding import (
    Embedder,
    bundled_model_path,
    exportable,
    gpu_driver_present,
    model_weights_id,
    resolve_query_backend,
)
from index.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "What did Lavrov say about NATO expansion?",
    "Which company reported record quarterly revenue, according to TechCrunch and The Verge?",
]


def _settings(query_backend: str) -> IndexSettings:
    return IndexSettings(
        embedding_backend="torch",
        embedding_device="cpu",
        query_backend=query_backend,  # type: ignore[arg-type]
    )


def test_auto_embeds_questions_with_onnx_and_the_same_vectors() -> None:
    auto = Embedder(_settings("auto"))
    torch_questions = Embedder(_settings("torch"))
    assert (auto.backend, auto.query_backend) == ("torch", "onnx")
    fast = np.stack([auto.embed_query(q) for q in QUESTIONS])
    exact = np.stack([torch_questions.embed_query(q) for q in QUESTIONS])
    assert "model" not in auto.__dict__  # questions need no torch model in memory
    assert 1.0 - np.sum(fast * exact, axis=1).min() < 1e-6
    assert auto.dimensions == 384 and auto.max_tokens == 254
    assert auto.identity == torch_questions.identity  # chunks: still torch's record


def test_a_bulk_job_stays_on_the_chunks_backend() -> None:
    embedder = Embedder(_settings("auto"))
    with embedder.bulk_threads():
        embedder.embed(QUESTIONS[:1])
    assert {"model", "bf16_model"} & embedder.__dict__.keys()  # torch made the bulk vectors


def test_resolving_the_question_backend(tmp_path: Path) -> None:
    bundled = bundled_model_path()
    assert exportable(bundled)
    assert resolve_query_backend("auto", "torch", "cpu", bundled) == "onnx"
    assert resolve_query_backend("auto", "torch", "cuda", bundled) == "torch"
    assert resolve_query_backend("auto", "onnx-int8", "cpu", bundled) == "onnx-int8"
    assert resolve_query_backend("onnx", "torch", "cpu", bundled) == "onnx"
    with pytest.raises(ConfigError, match="query_backend=torch makes fp32 vectors"):
        resolve_query_backend("torch", "onnx-int8", "cpu", bundled)
    # A model the export does not reproduce (a dense layer after pooling) keeps torch.
    custom = tmp_path / "custom"
    (custom / "1_Pooling").mkdir(parents=True)
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (path, kind) in enumerate(
            [
                ("", "Transformer"),
                ("1_Pooling", "Pooling"),
                ("2_Dense", "Dense"),
                ("3_Normalize", "Normalize"),
            ]
        )
    ]
    (custom / "modules.json").write_text(json.dumps(modules))
    (custom / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    assert not exportable(str(custom))
    assert resolve_query_backend("auto", "torch", "cpu", str(custom)) == "torch"
    assert not exportable(str(tmp_path))  # no modules.json


def test_a_broken_export_falls_back_to_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = bundled_model_path()
    broken = tmp_path / "news-assistant" / "onnx" / model_weights_id(path) / "model-fused.onnx"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not an onnx graph")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    auto = Embedder(_settings("auto"))
    with caplog.at_level(logging.WARNING, logger="index.embedding"):
        vector = auto.embed_query(QUESTIONS[0])
    assert auto.query_backend == "torch"
    assert "questions are embedded by torch" in caplog.text
    exact = Embedder(_settings("torch")).embed_query(QUESTIONS[0])
    assert 1.0 - float(vector @ exact) < 1e-6
    asked = Embedder(_settings("onnx"))  # asked for by name: the error is the user's to see
    with pytest.raises(Exception, match=r"(?i)protobuf|onnx|load"):
        asked.embed_query(QUESTIONS[0])


def test_a_question_asked_during_a_bulk_job_stays_a_question() -> None:
    """A running app embeds questions while an ingest embeds chunks in bf16 on its thread."""
    embedder = Embedder(
        IndexSettings(embedding_backend="torch", embedding_device="cpu", embedding_dtype="bf16")
    )
    alone = embedder.embed_query(QUESTIONS[0])
    started, finish = threading.Event(), threading.Event()
    bulk: list[np.ndarray] = []

    def ingest() -> None:
        with embedder.bulk_threads():
            bulk.append(embedder.embed(QUESTIONS[:1]))
            started.set()
            finish.wait(30)

    job = threading.Thread(target=ingest)
    job.start()
    try:
        assert started.wait(60)
        during = embedder.embed_query(QUESTIONS[0])
    finally:
        finish.set()
        job.join()
    np.testing.assert_array_equal(during, alone)  # not the job's bf16 arithmetic
    assert 1e-7 < 1.0 - float(bulk[0][0] @ alone) < 1e-4  # which did run in bf16


@pytest.mark.parametrize("token", [None, "secret"])
def test_an_app_that_takes_articles_is_ready_for_them_at_start(
    tmp_path: Path, token: str | None
) -> None:
    from assistant.engine import Engine
    from serving.config import AppSettings
    from serving.web import prepare

    settings = AppSettings(
        storage_dir=tmp_path, demo_on_empty=False, ingest_token=token, embedding_device="cpu"
    )
    engine = Engine(settings)
    prepare(engine, progress=False)
    loading = [t for t in threading.enumerate() if t.name == "load-model"]
    for thread in loading:  # after the first answer, on a thread of its own
        thread.join(60)
    loaded = {"model", "bf16_model"} & engine.embedder.__dict__.keys()
    assert bool(loaded) == (token is not None)
    # and the near-copy signatures its first article is checked against
    assert (engine.store.syndication is not None) == (token is not None)


def test_a_search_embeds_its_question_beside_its_keyword_search(
    small_engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.engine import Engine
    from index.keyword_state import _State

    assert isinstance(small_engine, Engine)
    embedder = small_engine.embedder
    embed, top_rows = embedder.embed, _State.top_rows
    started, seen = threading.Event(), threading.Event()
    threads: list[str] = []
    overlapped: list[bool] = []

    def embedding(texts: list[str], **kwargs: object) -> np.ndarray:
        threads.append(threading.current_thread().name)
        started.set()
        seen.wait(5)  # held until the keyword search has run meanwhile
        return embed(texts, **kwargs)  # type: ignore[arg-type]

    def searching(state: _State, *args: object) -> np.ndarray:
        overlapped.append(started.wait(5))
        seen.set()
        return top_rows(state, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(embedder, "embed", embedding)
    monkeypatch.setattr(_State, "top_rows", searching)
    assert small_engine.search("What did Lavrov say about NATO expansion?", k=3)
    assert threads and all(name.startswith("embed-question") for name in threads)
    assert overlapped and overlapped[0]


def test_the_onnx_path_encodes_as_the_models_tokenizer_does() -> None:
    """The question path tokenizes with `tokenizers` itself, not through transformers: the
    same ids, masks and types, truncated and padded alike, on real news and odd text."""
    embedder = Embedder(_settings("auto"))
    corpus = Path(__file__).parents[1] / "data" / "multihop-rag" / "corpus.json"
    articles = json.loads(corpus.read_text())[:40]
    texts = [a["title"] for a in articles] + [a["body"][:3000] for a in articles]
    texts += ["", "naïve café “quotes” \u200b zero\x0bwidth \u00a0 日本語 😀", "word " * 400]
    for start in range(0, len(texts), 16):
        batch = texts[start : start + 16]
        ours = embedder._encode(batch)
        theirs = embedder.tokenizer(
            batch, padding=True, truncation=True, max_length=256, return_tensors="np"
        )
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(ours[name], theirs[name])
    assert max(len(row) for row in embedder._encode(texts)["input_ids"]) == 256


def test_the_tokenizer_json_is_used_only_as_transformers_would_load_it() -> None:
    """A BERT tokenizer.json whose normalizer agrees with tokenizer_config.json; any other
    (another model type, a config that transformers would rebuild the normalizer from) keeps
    transformers' tokenizer."""
    from index.embedding import _bert_as_configured

    folder = Path(bundled_model_path())
    whole = json.loads((folder / "tokenizer.json").read_text())
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert _bert_as_configured(whole, config)
    assert not _bert_as_configured(whole, {**config, "do_lower_case": False})
    assert not _bert_as_configured(whole, {**config, "strip_accents": True})
    assert not _bert_as_configured({**whole, "model": {"type": "Unigram"}}, config)


def test_an_app_answers_without_torch_or_transformers(small_engine: object, tmp_path: Path) -> None:
    """Without a GPU driver, an app that only answers imports neither torch (it was imported
    to ask for a GPU) nor transformers (the ONNX path's tokenizer): 5 s of its start."""
    if gpu_driver_present():
        pytest.skip("a GPU driver is present: torch is asked whether it sees a GPU")
    from assistant.engine import Engine

    assert isinstance(small_engine, Engine)
    Embedder(_settings("auto")).embed_query("exported")  # the export (made with torch) exists
    storage = tmp_path / "storage"  # a copy: the session's engine holds its own folder
    shutil.copytree(small_engine.settings.storage_dir, storage)
    code = (
        "import sys; from pathlib import Path; from assistant.engine import Engine; "
        "from serving.config import AppSettings; from serving.web import prepare; "
        f"storage = Path({str(storage)!r}); "
        "engine = Engine(AppSettings(storage_dir=storage, demo_on_empty=False)); "
        "prepare(engine, progress=False); "
        "answer = engine.ask('What did Lavrov say about NATO expansion?', use_llm=False); "
        "assert answer.citations, answer.text; "
        "print(sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
