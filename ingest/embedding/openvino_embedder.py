"""The embedder started without torch or sentence-transformers: a cached OpenVINO IR, the model's
``tokenizer.json`` read by the ``tokenizers`` library, and pooling in numpy.

It runs only what a full load (``ingest.embedding.sentence_transformer_embedder``) already converted and described
in the IR's manifest, and only when the tokenizer gives the manifest's ids for its probe text; otherwise the
loader returns None and the full path runs (and writes what this one needs). Its vectors equal the full path's
up to float rounding (tests/test_openvino_embedder.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding.compute_dtype import resolve_dtype
from ingest.embedding.embedder import existing_model_path, window_tokens
from ingest.embedding.openvino_ir import (
    INPUT_NAME_CHOICES,
    IR_FILE,
    PRECISION_HINTS,
    PROBE_TEXT,
    EncoderManifest,
    EncoderRequest,
    compile_ir,
    ir_folder,
    read_manifest,
    resolve_backend,
)
from ingest.embedding.windowed_embedder import TokenLayout, WindowedEmbedder
from ingest.settings import EmbedderSettings

logger = logging.getLogger(__name__)
TOKENIZER_FILE = "tokenizer.json"


class OpenVinoEmbedder(WindowedEmbedder):
    """``Embedder`` over a compiled OpenVINO encoder, a ``tokenizers.Tokenizer`` and the manifest's pooling."""

    def __init__(self, compiled: Any, tokenizer: Any, manifest: EncoderManifest, settings: EmbedderSettings) -> None:
        layout = TokenLayout(manifest.bos_ids, manifest.eos_ids, frozenset(manifest.special_ids), manifest.pad_id,
                             window_tokens(settings.model, settings, manifest.max_seq_length, manifest.bos_ids,
                                           manifest.eos_ids),
                             "token_type_ids" in manifest.input_names)
        super().__init__(settings.model, manifest.dimension, settings, layout)
        self._tokenizer = tokenizer
        self._pooling = manifest.pooling
        self._infer = EncoderRequest(compiled, manifest.input_names)

    def _content_ids(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def _run(self, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        hidden = self._infer(features)
        if self._pooling == "cls":
            return hidden, hidden[:, 0]
        # Mean over the attended tokens (special ones included), as sentence-transformers' Pooling does.
        mask = features["attention_mask"][..., None].astype(np.float32)
        return hidden, (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)


def _tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def load_openvino_embedder(settings: EmbedderSettings, models_dir: Path) -> OpenVinoEmbedder | None:
    """The embedder without torch, or None when this model has no converted IR with a manifest yet (or its
    tokenizer reads differently): then the caller loads the full path."""
    if settings.device != "cpu" or resolve_backend(settings.backend, settings.device) != "openvino":
        return None
    dtype = resolve_dtype(settings.dtype, settings.device)
    if dtype not in PRECISION_HINTS:
        return None
    path = existing_model_path(settings, models_dir)
    if path is None or not (Path(path) / TOKENIZER_FILE).is_file():
        return None
    for names in INPUT_NAME_CHOICES:
        folder = ir_folder(models_dir, path, names, dtype != "float32")
        manifest = read_manifest(folder)
        if manifest is not None and manifest.input_names == names and (folder / IR_FILE).is_file():
            break
    else:
        return None
    try:
        tokenizer = _tokenizer(Path(path) / TOKENIZER_FILE)
        probe = tokenizer.encode(PROBE_TEXT, add_special_tokens=False).ids
        if tuple(probe) != manifest.probe_ids:
            logger.info("%s tokenises differently from the model's own tokenizer; loading the full model", path)
            return None
        compiled = compile_ir(folder, dtype, settings.num_threads)
    except Exception as exc:  # tokenizers and OpenVINO raise many types; the full path reports a real problem
        logger.info("cannot start %s from its OpenVINO IR (%s); loading the full model", path, exc)
        return None
    return OpenVinoEmbedder(compiled, tokenizer, manifest, settings)
