"""The embedder and the LLM a long-running face holds (the HTTP server, the MCP server): each loaded once, on first
need, and shared by every request and every knowledge base; thread-safe."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.generation.base import Generator
    from ingest.embedding.embedder import Embedder


class LoadedModels:
    def __init__(self, embedder_factory: Callable[[], Embedder], generator_factory: Callable[[], Generator]) -> None:
        self._embedder_factory, self._generator_factory = embedder_factory, generator_factory
        self._embedder: Embedder | None = None
        self._generator: Generator | None = None
        self._models_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        with self._models_lock:
            if self._embedder is None:
                self._embedder = self._embedder_factory()
            return self._embedder

    @property
    def generator(self) -> Generator:
        with self._models_lock:
            if self._generator is None:
                self._generator = self._generator_factory()
            return self._generator
