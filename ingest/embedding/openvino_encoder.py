"""The embedder's transformer run by OpenVINO on the CPU instead of PyTorch.

OpenVINO fuses the encoder's attention and uses the CPU's bf16/VNNI instructions better than PyTorch's eager
kernels: on the 2-core AVX512-BF16 CPU the bench ran on, ingest embedding was ~1.3x and a query embedding ~2.7x
faster than PyTorch in the same compute type, with vectors as close to float32 (bench/PERF_RESULTS.md). The
PyTorch module is traced once (``openvino.convert_model``) and the result cached as OpenVINO IR under the models
folder, keyed by the model files and the OpenVINO version (``ingest.embedding.openvino_ir``); later loads only
compile it (~0.3 s), and later processes start from it without PyTorch (``ingest.embedding.openvino_embedder``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging as transformers_logging

from ingest.embedding.openvino_ir import (
    IR_FILE,
    PRECISION_HINTS,
    EncoderRequest,
    OpenVinoError,
    compile_ir,
    ir_folder,
    ir_prefix,
    no_converter_telemetry,
)

logger = logging.getLogger(__name__)

# Shape of the example batch the trace runs; the converted model accepts any batch size and length.
_TRACE_BATCH, _TRACE_LENGTH = 2, 16


class _LastHiddenState(torch.nn.Module):
    """The Hugging Face encoder as a function of positional input tensors, which is what the tracer sees."""

    def __init__(self, model: torch.nn.Module, input_names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, inputs))).last_hidden_state


class OpenVinoEncoder:
    """Drop-in for the sentence-transformers ``Transformer`` module's forward: takes the features dict (token ids,
    attention mask ...) and adds "token_embeddings" (float32), computed by a compiled OpenVINO model."""

    def __init__(self, compiled: Any, input_names: tuple[str, ...]) -> None:
        self._infer = EncoderRequest(compiled, input_names)

    def __call__(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hidden = self._infer({name: tensor.cpu().numpy() for name, tensor in features.items()})
        features["token_embeddings"] = torch.from_numpy(hidden)
        return features


def _convert(model: torch.nn.Module, input_names: tuple[str, ...], fp16_weights: bool, target: Path) -> None:
    """Trace ``model`` into OpenVINO IR at ``target`` (written to a temporary sibling, then renamed into place)."""
    import openvino

    ids = torch.ones((_TRACE_BATCH, _TRACE_LENGTH), dtype=torch.long)
    mask = torch.ones_like(ids)
    # A padded row, so the trace keeps the attention-mask path (an all-ones mask may be optimised away).
    mask[1, _TRACE_LENGTH // 2:] = 0
    example = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    wrapper = _LastHiddenState(model, input_names).eval()
    verbosity = transformers_logging.get_verbosity()
    # The tracer warns about Python branches on shapes (kept general here) and, walking the model's attributes,
    # makes transformers log a loss-function notice that means nothing for an encoder.
    transformers_logging.set_verbosity_error()
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings(), no_converter_telemetry():
            warnings.simplefilter("ignore")
            converted = openvino.convert_model(wrapper, example_input=tuple(example[n] for n in input_names),
                                               input=[([-1, -1], openvino.Type.i64)] * len(input_names))
    finally:
        transformers_logging.set_verbosity(verbosity)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        openvino.save_model(converted, staging / IR_FILE, compress_to_fp16=fp16_weights)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / IR_FILE).is_file():  # another process that converted the same model wins the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale(target: Path, prefix: str) -> None:
    """Delete IR converted from earlier files of the same model path at the same precision (hundreds of MB each)."""
    for folder in target.parent.glob(prefix + "*"):
        if folder != target:
            shutil.rmtree(folder, ignore_errors=True)


def load_openvino_encoder(model: torch.nn.Module, model_path: str, input_names: tuple[str, ...], dtype: str,
                          num_threads: int, models_dir: Path) -> tuple[OpenVinoEncoder, Path]:
    """Compile ``model`` (a Hugging Face encoder returning ``last_hidden_state``) for the CPU, converting it into
    ``models_dir/openvino`` the first time; also returns the IR's folder. ``num_threads`` 0 lets OpenVINO use
    every core."""
    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        raise OpenVinoError("the openvino backend needs the 'openvino' package (pip install 'docqa[openvino]')") \
            from exc
    if dtype not in PRECISION_HINTS:
        raise OpenVinoError(f"no OpenVINO precision for compute type {dtype!r}")
    # Weights stored in float16 (half the disk) unless the encoder computes in float32.
    fp16_weights = dtype != "float32"
    target = ir_folder(models_dir, model_path, input_names, fp16_weights)
    try:
        if not (target / IR_FILE).is_file():
            logger.info("converting %s to OpenVINO IR in %s (once)", model_path, target)
            _convert(model, input_names, fp16_weights, target)
            _remove_stale(target, ir_prefix(model_path, fp16_weights))
        compiled = compile_ir(target, dtype, num_threads)
    except Exception as exc:  # tracing and compiling raise many types (RuntimeError, TypeError, OpenVINO's own)
        raise OpenVinoError(f"cannot run {model_path!r} with OpenVINO: {exc}") from exc
    return OpenVinoEncoder(compiled, input_names), target
