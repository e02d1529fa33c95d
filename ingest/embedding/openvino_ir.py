"""Where an encoder's OpenVINO IR lives in the models folder, and compiling it; no PyTorch here.

An IR folder holds the traced encoder (``encoder.xml``/``.bin``), OpenVINO's compiled-model cache and, beside them,
``encoder.json``: what running the encoder needs besides the graph (tokeniser wrapping, special ids, pooling), written
by the process that loaded the model through sentence-transformers. With both present a later process embeds with
OpenVINO, the ``tokenizers`` library and numpy alone (``ingest.embedding.openvino_embedder``), without importing
torch or sentence-transformers: that import is most of a short ingest's start-up (bench/RESULTS_TTFT.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = ("auto", "torch", "openvino")
IR_DIR_NAME = "openvino"
IR_FILE = "encoder.xml"
MANIFEST_FILE = "encoder.json"
_COMPILED_CACHE_DIR = "compiled"
# OpenVINO's inference precision for each compute type of ``EmbedderSettings.dtype``.
PRECISION_HINTS = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
# The encoder inputs a model may take: ids and mask, and token types for models whose tokenizer makes them.
INPUT_NAME_CHOICES = (("input_ids", "attention_mask"), ("input_ids", "attention_mask", "token_type_ids"))
# Bumped when the manifest's meaning changes, so an old one is ignored (and rewritten by a full load).
MANIFEST_VERSION = 1


class OpenVinoError(RuntimeError):
    """The encoder could not be converted to or run by OpenVINO; the message says why."""


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def resolve_backend(requested: str, device: str) -> str:
    """``requested`` unless it is "auto": OpenVINO on the CPU when it is installed, else PyTorch."""
    if requested != "auto":
        return requested
    return "openvino" if device == "cpu" and openvino_installed() else "torch"


@dataclass(frozen=True)
class EncoderManifest:
    """How to run an IR without sentence-transformers: taken from the loaded model, never guessed."""

    input_names: tuple[str, ...]
    # Special ids the tokenizer puts before and after one text, and every special id (left out of token vectors).
    bos_ids: tuple[int, ...]
    eos_ids: tuple[int, ...]
    special_ids: tuple[int, ...]
    pad_id: int
    # The model's own token limit (sentence-transformers' max_seq_length; 0 when it sets none).
    max_seq_length: int
    dimension: int
    # "mean" or "cls": the only poolings the numpy path implements; other models keep the full path.
    pooling: str
    # Ids the full path's tokenizer gave PROBE_TEXT: a tokenizer.json read differently is caught before use.
    probe_ids: tuple[int, ...]
    version: int = MANIFEST_VERSION


# Chinese, English, digits, full-width punctuation and an accent: where tokenisers most often differ.
PROBE_TEXT = "passage: 检索增强生成（RAG）在 2024 年的 F1 为 83.5%，Café naïve «quoted» text."


def ir_folder(models_dir: Path, model_path: str, input_names: tuple[str, ...], fp16_weights: bool) -> Path:
    """The IR folder of this model's files, inputs and weight precision under the installed OpenVINO."""
    return Path(models_dir) / IR_DIR_NAME / (ir_prefix(model_path, fp16_weights)
                                             + _cache_key(model_path, input_names, fp16_weights))


def ir_prefix(model_path: str, fp16_weights: bool) -> str:
    """Shared by every IR of one model path and precision (older ones are removed when a new one is made)."""
    path_tag = hashlib.sha256(model_path.encode()).hexdigest()[:8]
    return f"{Path(model_path).name}-{path_tag}-{'f16' if fp16_weights else 'f32'}-"


def _cache_key(model_path: str, input_names: tuple[str, ...], fp16_weights: bool) -> str:
    from importlib.metadata import version

    digest = hashlib.sha256(f"{model_path}|{version('openvino')}|{','.join(input_names)}|{fp16_weights}".encode())
    folder = Path(model_path)
    if folder.is_dir():
        # A changed model file (size or time) gives a new key, so a replaced model is never run from a stale IR.
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"|{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def no_converter_telemetry() -> Iterator[None]:
    """OpenVINO's model converter sends usage events to Google Analytics unless the user opted out, from a forked
    process (which also aborts when gRPC threads are running, as with Milvus). docqa sends nothing off the
    machine: while it converts, the converter gets OpenVINO's own no-op telemetry."""
    from openvino.tools.ovc import convert_impl, telemetry_stub, telemetry_utils

    saved = convert_impl.tm, telemetry_utils.tm
    convert_impl.tm = telemetry_utils.tm = telemetry_stub
    try:
        yield
    finally:
        convert_impl.tm, telemetry_utils.tm = saved


def compile_ir(folder: Path, dtype: str, num_threads: int) -> Any:
    """The compiled model of ``folder``'s IR for the CPU. ``num_threads`` 0 lets OpenVINO use every core."""
    import openvino

    if dtype not in PRECISION_HINTS:
        raise OpenVinoError(f"no OpenVINO precision for compute type {dtype!r}")
    # CACHE_DIR: OpenVINO keeps the compiled blob next to the IR, so a new process (every `python -m ingest`,
    # `python -m app.cli.ask`) imports it instead of compiling the graph again.
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[dtype], "PERFORMANCE_HINT": "LATENCY",
                              "CACHE_DIR": str(folder / _COMPILED_CACHE_DIR)}
    if num_threads > 0:
        config["INFERENCE_NUM_THREADS"] = num_threads
    return openvino.Core().compile_model(folder / IR_FILE, "CPU", config)


class EncoderRequest:
    """The compiled encoder's one infer request, shared by every thread that embeds (requests are not
    thread-safe): input arrays by name in, the last hidden state out."""

    def __init__(self, compiled: Any, input_names: tuple[str, ...]) -> None:
        self._request = compiled.create_infer_request()
        self._input_names = input_names
        self._lock = threading.Lock()

    def __call__(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            # The result aliases the request's output buffer, which the next call overwrites: copy it out.
            return np.array(self._request.infer([features[name] for name in self._input_names])[0],
                            dtype=np.float32)


def write_manifest(folder: Path, manifest: EncoderManifest) -> None:
    """Write ``encoder.json`` atomically (a reader sees the old file, the new one, or none)."""
    if read_manifest(folder) == manifest:
        return
    handle, staging = tempfile.mkstemp(prefix=f".{MANIFEST_FILE}-", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(asdict(manifest), out, indent=2)
        os.replace(staging, folder / MANIFEST_FILE)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def read_manifest(folder: Path) -> EncoderManifest | None:
    """The folder's manifest, or None when it is missing, unreadable or from another manifest version."""
    try:
        raw = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        if raw.get("version") != MANIFEST_VERSION:
            return None
        return EncoderManifest(**{key: tuple(value) if isinstance(value, list) else value
                                  for key, value in raw.items()})
    except (OSError, ValueError, TypeError, AttributeError):
        return None
