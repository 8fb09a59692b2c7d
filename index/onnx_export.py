"""The bundled model exported to ONNX, offline, into the user cache; ONNX Runtime sessions.

The export runs the transformer with plain ("eager") attention, so that ONNX Runtime's BERT
optimiser recognises each layer and fuses it (embeddings and layer norm, self-attention into one
`Attention` operator, GELU with its bias, residual and layer norm): the same vectors as the
unfused graph (cosine distance under 1e-6), and the graph that int8 quantisation starts from.
Measured in bench/embedding.py: the int8 graph quantised from the fused one embeds chunks 1.2x
faster than the int8 graph quantised from the unfused one.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.errors import ConfigError

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
log = logging.getLogger(__name__)


def onnx_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "news-assistant" / "onnx"


def onnx_model_file(model_path: str, model_id: str, precision: str) -> Path:
    """The model exported to ONNX (mean pooling and normalising included, layers fused), and
    quantised to int8 weights for precision int8: made once from the local weights, never
    downloaded. (Exports from before the fusion, model.onnx and model-int8.onnx, are not read.)"""
    folder = onnx_cache_dir() / model_id
    fp32 = folder / "model-fused.onnx"
    if not fp32.exists():
        _made_whole(fp32, lambda partial: _export(model_path, partial))
    if precision == "fp32":
        return fp32
    int8 = folder / "model-fused-int8.onnx"
    if not int8.exists():
        _made_whole(int8, lambda partial: _quantise(fp32, partial))
    return int8


def _made_whole(target: Path, make: Callable[[Path], None]) -> None:
    """`make` writes into a file of this process's own, renamed into place when done: a
    reader never sees half a graph, and two processes exporting at once both succeed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    try:
        with _quiet():
            make(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


@contextmanager
def _quiet() -> Iterator[None]:
    """The tracer's warnings and the quantiser's advice (logged on the root logger) are not
    the user's to read: logs stay quiet by default, and a failure still raises."""
    root = logging.getLogger()
    root.addFilter(_errors_only)  # records logged on the root logger itself, not propagated ones
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(_errors_only)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _quantise(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The fused operators are ONNX Runtime's own, whose outputs shape inference cannot type:
    # they are float32 (DefaultTensorType), as every activation in this graph. One scale a
    # matrix: a scale for each output channel made vectors nearer fp32's (6e-3 cosine on
    # average, not 5e-2) but retrieval no better (MultiHop-RAG dev recall@10 -0.0061 against
    # fp32's, where one a matrix gives -0.0044; bench/embedding.py --quality onnx-int8).
    options = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, extra_options=options)


def _export(model_path: str, target: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    class Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    model = AutoModel.from_pretrained(
        model_path, local_files_only=True, attn_implementation="eager"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    sample = tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in ONNX_INPUTS}
    plain = target.with_suffix(".plain")
    try:
        with torch.no_grad():
            torch.onnx.export(
                Pooled(model),
                tuple(sample[name] for name in ONNX_INPUTS),
                str(plain),
                input_names=list(ONNX_INPUTS),
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        _fuse(plain, target, json.loads((Path(model_path) / "config.json").read_text()))
    finally:
        plain.unlink(missing_ok=True)


def _fuse(plain: Path, target: Path, config: dict[str, Any]) -> None:
    """ONNX Runtime's BERT optimiser over the exported graph; a model it cannot fuse (another
    architecture, or the optimiser missing) keeps the plain graph, which makes the same vectors."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        fused = optimize_model(
            str(plain),
            model_type="bert",
            num_heads=int(config.get("num_attention_heads", 0)),
            hidden_size=int(config.get("hidden_size", 0)),
        )
        fused.save_model_to_file(str(target))
        counts = fused.get_fused_operator_statistics()
        log.info("ONNX export fused: %s", {k: v for k, v in counts.items() if v})
    except Exception as error:  # any failure leaves the plain graph, said once
        log.warning("the ONNX export is not fused (%s); it runs unfused, a little slower", error)
        os.replace(plain, target)


def onnx_session(path: Path, threads: int, device: str) -> InferenceSession:
    import onnxruntime

    if device == "cuda" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        raise ConfigError("embedding_device=cuda with onnx needs onnxruntime-gpu; or use torch")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if threads == 1:  # queries: no threads spinning while idle beside the app's other work
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    return onnxruntime.InferenceSession(str(path), options, providers=[provider])
