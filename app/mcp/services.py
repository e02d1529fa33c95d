"""What the MCP server holds for its whole life: the settings, the embedder and the LLM (loaded once, on first
need, and shared by every base) and, per knowledge base, the answer pipeline over its live generation
(app/answer/live_pipeline.py: reopened when ``python -m ingest``, the page or the HTTP API commits a new one)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.answer.knowledge_bases import base_settings
from app.answer.live_pipeline import LivePipeline, Snapshot
from app.answer.loaded_models import LoadedModels
from app.config import Settings
from app.wiring import build_generator, build_pipeline, knowledge_store, load_embedder

if TYPE_CHECKING:
    from app.generation.base import Generator
    from ingest.store.store_protocol import KnowledgeStore
    from ingest.embedding.embedder import Embedder


class McpServices(LoadedModels):
    def __init__(self, settings: Settings, embedder_factory: Callable[[], Embedder] | None = None,
                 generator_factory: Callable[[], Generator] | None = None) -> None:
        super().__init__(embedder_factory or (lambda: load_embedder(settings)),
                         generator_factory or (lambda: build_generator(settings)))
        self.settings = settings
        self._bases: dict[str, LivePipeline] = {}
        self._bases_lock = threading.Lock()

    def base(self, name: str | None) -> Settings:
        """The settings of the base called ``name`` (None: the configured one); ConfigError naming the known ones."""
        return base_settings(self.settings, name)

    def store(self, name: str | None) -> KnowledgeStore:
        """The store of base ``name`` (None: the configured one); ConfigError for an unknown base."""
        return knowledge_store(self.base(name))

    def snapshot(self, name: str | None) -> Snapshot:
        """The pipeline over the live generation of base ``name``. Raises ConfigError for an unknown base,
        KnowledgeBaseError when it holds nothing yet or cannot be read."""
        settings = self.base(name)
        with self._bases_lock:
            live = self._bases.get(settings.kb_name)
            if live is None:
                live = self._bases[settings.kb_name] = LivePipeline(
                    knowledge_store(settings),
                    lambda previous: build_pipeline(settings, generator=self.generator, embedder=self.embedder))
        return live.snapshot()
