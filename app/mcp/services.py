"""What the MCP server holds for its whole life: the settings, the embedder and the LLM (loaded once, on first
need, and shared by every base) and, per knowledge base, the answer pipeline over its live generation
(app/answer/live_pipeline.py: reopened when ``python -m ingest``, the page or the HTTP API commits a new one)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from app.answer.base_selection import BasePipelines
from app.answer.knowledge_bases import base_settings
from app.answer.live_pipeline import Snapshot
from app.answer.loaded_models import LoadedModels
from app.config import Settings
from app.wiring import assemble_pipeline, build_generator, build_pipeline, knowledge_store, load_embedder

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
        self.pipelines = BasePipelines(
            settings, lambda chosen: build_pipeline(chosen, generator=self.generator, embedder=self.embedder),
            lambda retriever: assemble_pipeline(retriever, self.generator, self.embedder, settings))

    def base(self, name: str | None) -> Settings:
        """The settings of the base called ``name`` (None: the configured one); ConfigError naming the known ones."""
        return base_settings(self.settings, name)

    def store(self, name: str | None) -> KnowledgeStore:
        """The store of base ``name`` (None: the configured one); ConfigError for an unknown base."""
        return knowledge_store(self.base(name))

    def snapshot(self, name: str | None, bases: Sequence[str] | None = None) -> Snapshot:
        """The pipeline over the live generation of base ``name``, or over several ``bases`` at once (fused; one
        that cannot be read is left out with a line). Raises ConfigError for an unknown base, KnowledgeBaseError
        when it holds nothing yet or cannot be read."""
        return self.pipelines.snapshot(bases or ([name] if name else None))
