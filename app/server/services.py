"""What the server holds for its whole life — the settings, the embedder and the LLM — and the answer pipeline over
the knowledge base's live generation (app/answer/live_pipeline.py), reopened when a new one is committed (an upload,
a re-scan or ``python -m ingest``). Requests already running keep the snapshot they started with."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from app.answer.base_selection import BasePipelines
from app.answer.knowledge_bases import document_id
from app.answer.loaded_models import LoadedModels
from app.answer.live_pipeline import Snapshot
from app.config import Settings
from app.generation.base import Generator
from app.wiring import assemble_pipeline, build_generator, build_pipeline, load_embedder
from ingest.records import DocumentRecord
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.store.store_protocol import StoreInfo

log = logging.getLogger("docqa.server")

if TYPE_CHECKING:
    from app.answer.answer_pipeline import AnswerPipeline
    from ingest.embedding.embedder import Embedder

__all__ = ["ServerServices", "Snapshot", "document_id"]


class ServerServices(LoadedModels):
    """Models load once (lazily, on first need); the pipeline is rebuilt only for a new generation."""

    def __init__(self, settings: Settings, embedder_factory: Callable[[], Embedder] | None = None,
                 generator_factory: Callable[[], Generator] | None = None) -> None:
        super().__init__(embedder_factory or (lambda: load_embedder(settings)),
                         generator_factory or (lambda: build_generator(settings)))
        self.settings = settings
        # Every base's live pipeline, and those over several bases at once ("docqa/A+B"); the configured base's
        # store (FAISS folder or Milvus) is asked which generation is live before every request.
        self.bases = BasePipelines(settings, self._open_pipeline,
                                   lambda retriever: assemble_pipeline(retriever, self.generator, self.embedder,
                                                                       settings))
        self.live = self.bases.live()
        self.store = self.live.store

    @property
    def kb_name(self) -> str:
        return self.settings.server.kb_name or self.settings.kb_path.resolve().name

    def live_generation(self) -> str | None:
        """The generation readers use (a damaged or set-back CURRENT resolved as ``resolve_live`` does); None when
        nothing was ever committed; KnowledgeBaseError when no generation can stand in for a damaged CURRENT."""
        return self.live.live_generation()

    def _open_pipeline(self, settings: Settings) -> AnswerPipeline:
        # The reranker is always built so each request can switch reranking on or off.
        return build_pipeline(settings, with_reranker=True, generator=self.generator, embedder=self.embedder)

    def snapshot(self, bases: Sequence[str] | None = None) -> Snapshot:
        """The pipeline over the live generation of the configured base, or of the bases named (several: fused,
        app/answer/base_selection.py); raises KnowledgeBaseError when there is no base yet, ConfigError for an
        unknown one."""
        return self.bases.snapshot(bases) if bases else self.live.snapshot()

    def documents(self) -> tuple[str | None, list[DocumentRecord]]:
        """The live generation's name and its catalogued documents (without opening its indexes); KnowledgeBaseError,
        with the one-line message and fix, when the base cannot be read."""
        return self.store.live_documents()

    def live_info(self) -> StoreInfo | None:
        """What the live generation holds (embedder, counts), None when there is no base yet."""
        return self.store.live_info()

    def problem(self) -> str:
        """Why questions cannot be answered now ("" when they can, or when there is simply no base yet): the base
        is opened (or found open) to tell, so a base repaired or rebuilt meanwhile counts as repaired."""
        try:
            if self.live_generation() is not None:  # nothing committed yet is no problem: the base is empty
                self.snapshot()
        except KnowledgeBaseError as exc:
            return str(exc)
        return ""

    def warm_up(self) -> None:
        """Load the models and open the base now, so the first question does not pay for it. A base that cannot be
        opened is said in one line: the server still starts, tells /health why, and opens the base once it is
        repaired or rebuilt (an upload or a re-scan can be what rebuilds it)."""
        _ = self.embedder, self.generator
        if problem := self.problem():
            log.warning("the knowledge base cannot be used yet: %s", problem)
