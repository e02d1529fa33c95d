"""The embedder over a loaded sentence-transformers model, its encoder run by PyTorch or OpenVINO.

Loading this path imports torch and sentence-transformers (seconds); it also writes, beside an OpenVINO IR, the
manifest that lets a later process embed without them (``ingest.embedding.openvino_embedder``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ingest.embedding.compute_dtype import DTYPES, resolve_dtype
from ingest.embedding.embedder import EmbedderError, resolve_model_path, window_tokens
from ingest.embedding.openvino_encoder import load_openvino_encoder
from ingest.embedding.openvino_ir import (
    PROBE_TEXT,
    EncoderManifest,
    OpenVinoError,
    resolve_backend,
    write_manifest,
)
from ingest.embedding.windowed_embedder import TokenLayout, WindowedEmbedder
from ingest.settings import EmbedderSettings

logger = logging.getLogger(__name__)
# The encoder step: the features dict (token ids, attention mask ...) in, the same dict with "token_embeddings" out.
Encoder = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
_DTYPES = {name: getattr(torch, name) for name in DTYPES}
_LOCK = threading.Lock()
_MODELS: dict[tuple[str, ...], tuple[Any, Encoder | None, Path | None]] = {}
# sentence-transformers pooling modes the numpy path can repeat.
_LEAN_POOLINGS = ("mean", "cls")


class SentenceTransformerEmbedder(WindowedEmbedder):
    """``Embedder`` over a loaded ``SentenceTransformer`` whose first module is a text Transformer; ``encoder``
    replaces that module's forward (default: the module itself, in PyTorch)."""

    def __init__(self, model: Any, name: str, settings: EmbedderSettings, encoder: Encoder | None = None) -> None:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            Transformer,
        )

        transformer = model[0]
        if not isinstance(transformer, Transformer) or transformer.tokenizer is None:
            raise EmbedderError(f"embedding model {name!r}: first module is not a text Transformer with a tokenizer")
        self._model = model
        self._encode: Encoder = encoder or transformer
        # Pooling (and any Dense layers) after the encoder; normalisation happens once, after windows are combined.
        self._pooling_modules = [m for m in list(model)[1:] if not isinstance(m, Normalize)]
        self._tokenizer = transformer.tokenizer
        self._device = torch.device(settings.device)
        bos_ids, eos_ids = self._special_wrapping(name)
        window = window_tokens(name, settings, transformer.max_seq_length or 0, bos_ids, eos_ids)
        pad_id = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else 0
        layout = TokenLayout(bos_ids, eos_ids, frozenset(self._tokenizer.all_special_ids), pad_id, window,
                             "token_type_ids" in model_input_names(transformer))
        super().__init__(name, int(model.get_embedding_dimension()), settings, layout)

    def _special_wrapping(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The special ids the tokenizer puts before and after a single text (e.g. [0] and [2] for XLM-R)."""
        probe = "a"
        bare = self._tokenizer(probe, add_special_tokens=False)["input_ids"]
        full = self._tokenizer(probe, add_special_tokens=True)["input_ids"]
        for start in range(len(full) - len(bare) + 1):
            if full[start:start + len(bare)] == bare:
                return tuple(full[:start]), tuple(full[start + len(bare):])
        raise EmbedderError(f"embedding model {name!r}: cannot tell where its tokenizer adds special tokens")

    def _content_ids(self, texts: list[str]) -> list[list[int]]:
        return self._tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]

    def _run(self, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        tensors = {key: torch.from_numpy(value).to(self._device) for key, value in features.items()}
        with torch.inference_mode():
            tensors = self._encode(tensors)
            tokens = tensors["token_embeddings"].float().cpu().numpy()
            for module in self._pooling_modules:
                tensors = module(tensors)
            pooled = tensors["sentence_embedding"].float().cpu().numpy()
        return tokens, pooled

    def lean_manifest(self) -> EncoderManifest | None:
        """What the numpy path needs to embed exactly as this one, or None when its pooling is another kind."""
        from sentence_transformers.sentence_transformer.modules import Pooling

        if len(self._pooling_modules) != 1 or not isinstance(self._pooling_modules[0], Pooling):
            return None
        mode = getattr(self._pooling_modules[0], "pooling_mode", None)
        if mode not in _LEAN_POOLINGS:
            return None
        layout = self._layout
        return EncoderManifest(
            input_names=model_input_names(self._model[0]), bos_ids=layout.bos_ids, eos_ids=layout.eos_ids,
            special_ids=tuple(sorted(layout.special_ids)), pad_id=layout.pad_id,
            max_seq_length=self._model[0].max_seq_length or 0, dimension=self.dimension, pooling=mode,
            probe_ids=tuple(self._content_ids([PROBE_TEXT])[0]))


def model_input_names(transformer: Any) -> tuple[str, ...]:
    """The tensors the encoder takes: ids and mask, and token types for models whose tokenizer makes them."""
    extra = ("token_type_ids",) if "token_type_ids" in getattr(transformer.tokenizer, "model_input_names", ()) else ()
    return ("input_ids", "attention_mask", *extra)


def _load_model(settings: EmbedderSettings, models_dir: Path) -> tuple[Any, Encoder | None, Path | None]:
    """The sentence-transformers model and, for the OpenVINO backend, the encoder that replaces its Transformer
    and the folder of its IR."""
    from sentence_transformers import SentenceTransformer

    dtype = resolve_dtype(settings.dtype, settings.device)
    if dtype not in _DTYPES:
        raise EmbedderError(f"embedding model {settings.model!r}: unknown embedder dtype {settings.dtype!r} "
                            f"(use auto or one of {', '.join(_DTYPES)})")
    backend = resolve_backend(settings.backend, settings.device)
    path = resolve_model_path(settings, models_dir)
    if settings.num_threads > 0:
        torch.set_num_threads(settings.num_threads)
    try:
        model = SentenceTransformer(path, device=settings.device, local_files_only=not settings.allow_download)
    except Exception as exc:  # the library raises many types (OSError, ValueError, HF hub errors ...)
        where = "from the local cache" if not settings.allow_download else "(downloads allowed)"
        raise EmbedderError(f"cannot load embedding model {settings.model!r} {where} on device "
                            f"{settings.device!r}: {exc}") from exc
    encoder, ir = None, None
    if backend == "openvino":
        try:
            # OpenVINO converts the float32 weights and computes in `dtype` itself. Its threads default to
            # torch's count, which Ray sets per actor from the CPUs the actor reserved.
            encoder, ir = load_openvino_encoder(model[0].auto_model, path, model_input_names(model[0]), dtype,
                                                settings.num_threads or torch.get_num_threads(), models_dir)
        except OpenVinoError as exc:
            if settings.backend == "openvino":
                raise EmbedderError(f"embedding model {settings.model!r}: {exc}") from exc
            logger.warning("%s; embedding with PyTorch instead", exc)
    # Cast after any conversion: with OpenVINO the PyTorch weights go unused and bf16 halves their memory.
    return model.to(_DTYPES[dtype]), encoder, ir


def load_sentence_transformer_embedder(settings: EmbedderSettings, models_dir: Path) -> SentenceTransformerEmbedder:
    """The embedder through sentence-transformers (the model loaded once per model, device, dtype and backend per
    process and models folder, where its converted forms live); beside an OpenVINO IR it writes the manifest that
    lets a later process skip this path."""
    key = (settings.model, settings.device, settings.dtype, settings.backend, str(models_dir))
    with _LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            loaded = _load_model(settings, Path(models_dir))
            _MODELS[key] = loaded
    model, encoder, ir = loaded
    embedder = SentenceTransformerEmbedder(model, settings.model, settings, encoder)
    manifest = embedder.lean_manifest() if ir is not None else None
    if manifest is not None:
        try:
            write_manifest(ir, manifest)
        except OSError as exc:  # only a later start-up is slower without it
            logger.warning("cannot write %s: %s", ir, exc)
    return embedder
