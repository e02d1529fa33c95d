"""The ingest's embedding step on Ray Data, for ingests too big for one process (``EmbedderSettings.runner="ray"``).

``RayEmbedder`` is an ``Embedder``: ``encode_passages`` turns the texts into a Ray dataset
(``ray.data.from_items``) and embeds it with ``map_batches`` over a pool of actors, each of which loads the model
once (``load_embedder``) and embeds ``EmbedderSettings.batch_size`` texts per call. With ``ray_address`` pointing at
a cluster this spreads an ingest over machines and GPUs (``ray_gpus_per_worker``); locally it uses
``ray_workers`` processes. Passages' token vectors for the reranker's store come back with their vectors; queries
(search time, one text at a time) stay in-process: a round trip through Ray would only add latency.

The vectors are those of the in-process embedder (same model, same code), so a knowledge base built either way
is the same. On a multi-machine cluster the model cache (``Settings.models_path``) must be on a shared path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ingest.settings import EmbedderSettings

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder

log = logging.getLogger(__name__)

EmbedderLoader = Callable[[EmbedderSettings, Path], "Embedder"]


class RayUnavailableError(RuntimeError):
    """Ray is not installed or cannot start/join the configured cluster."""


def _default_loader(settings: EmbedderSettings, models_dir: Path) -> "Embedder":
    from ingest.embedding.factory import load_embedder
    return load_embedder(settings, models_dir)


class _PassageBatchEmbedder:
    """A Ray actor: loads the embedder once, then embeds one batch of texts per call (with ``with_tokens``, also
    their token vectors, as float16 to halve what travels back)."""

    def __init__(self, settings: EmbedderSettings, models_dir: str, loader: EmbedderLoader,
                 with_tokens: bool) -> None:
        self._embedder = loader(settings, Path(models_dir))
        self._with_tokens = with_tokens

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        out = {"position": batch["position"]}
        if self._with_tokens:
            vectors, tokens = self._embedder.encode_passages_with_tokens(texts)
            # One object per row (token counts differ): Ray keeps it as a variable-shaped tensor column.
            ragged = np.empty(len(tokens), dtype=object)
            for row, vectors_of_text in enumerate(tokens):
                ragged[row] = vectors_of_text.astype(np.float16)
            out["tokens"] = ragged
        else:
            vectors = self._embedder.encode_passages(texts)
        out["vector"] = np.asarray(vectors, dtype=np.float32)
        return out


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError("EmbedderSettings.runner='ray' needs Ray Data: pip install 'docqa[scale]' "
                                  "(or 'ray[data]')") from exc
    return ray


def ensure_ray(settings: EmbedderSettings) -> None:
    """Join ``settings.ray_address`` (or start a local Ray instance) unless Ray is already initialised."""
    ray = _ray()
    if ray.is_initialized():
        return
    try:
        ray.init(address=settings.ray_address or None, ignore_reinit_error=True, log_to_driver=False)
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError ... depending on the failure
        where = settings.ray_address or "a local instance"
        raise RayUnavailableError(f"cannot start or join Ray at {where}: {exc}") from exc


class RayEmbedder:
    """``Embedder`` whose ``encode_passages`` runs on Ray Data; queries and token vectors run in-process."""

    def __init__(self, settings: EmbedderSettings, models_dir: Path,
                 loader: EmbedderLoader = _default_loader) -> None:
        self._settings = settings
        self._models_dir = Path(models_dir)
        self._loader = loader
        # Loaded here for name/dimension and queries; this also converts the packaged model once, before the
        # actors start, so they find it in the model cache instead of all converting it at the same time.
        self._local = loader(settings, self._models_dir)
        self.name = self._local.name
        self.dimension = self._local.dimension

    def _worker_settings(self) -> EmbedderSettings:
        """Each actor gets as many torch threads as CPUs it reserves (the default, all cores, oversubscribes)."""
        threads = self._settings.num_threads or max(1, int(self._settings.ray_cpus_per_worker))
        return self._settings.replace(runner="local", num_threads=threads)

    def _run(self, texts: list[str], with_tokens: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        ensure_ray(self._settings)
        ray = _ray()
        s = self._settings
        dataset = ray.data.from_items([{"position": i, "text": t} for i, t in enumerate(texts)])
        embedded = dataset.map_batches(
            _PassageBatchEmbedder,
            fn_constructor_kwargs={"settings": self._worker_settings(), "models_dir": str(self._models_dir),
                                   "loader": self._loader, "with_tokens": with_tokens},
            batch_size=s.batch_size, batch_format="numpy", concurrency=s.ray_workers,
            num_cpus=s.ray_cpus_per_worker, num_gpus=s.ray_gpus_per_worker)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list[np.ndarray] = [np.zeros((0, self.dimension), dtype=np.float32)] * len(texts)
        seen = np.zeros(len(texts), dtype=bool)
        # Ray Data does not keep row order across actors by default; positions put every vector back in place.
        for batch in embedded.iter_batches(batch_format="numpy", batch_size=None):
            out[batch["position"]] = batch["vector"]
            seen[batch["position"]] = True
            if with_tokens:
                for position, vectors in zip(batch["position"], batch["tokens"]):
                    tokens[int(position)] = np.asarray(vectors, dtype=np.float32)
        if not seen.all():
            raise RuntimeError(f"Ray returned vectors for {int(seen.sum())} of {len(texts)} passages")
        return out, tokens

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._run(texts, with_tokens=False)[0]

    def encode_passages_with_tokens(self, texts: list[str],
                                    show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        return self._run(texts, with_tokens=True)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._local.encode_queries(texts)

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        return self._local.token_embeddings(texts, is_query)


def load_ingest_embedder(settings: EmbedderSettings, models_dir: Path) -> "Embedder":
    """The embedder the ingest uses: ``RayEmbedder`` when ``runner="ray"``, else the in-process embedder."""
    if settings.runner == "ray":
        return RayEmbedder(settings, models_dir)
    return _default_loader(settings, models_dir)
