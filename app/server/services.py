"""What the server holds for its whole life — the settings, the embedder and the LLM — and the answer pipeline over
the knowledge base's live generation, reopened when ``CURRENT`` names a new one (an upload, a re-scan or
``python -m ingest`` committed it). Requests already running keep the snapshot they started with."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.config import Settings
from app.generation.base import Generator
from app.wiring import build_generator, build_pipeline, knowledge_store, load_embedder
from ingest.records import DocumentRecord
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.store.store_protocol import StoreInfo

if TYPE_CHECKING:
    from app.answer.answer_pipeline import AnswerPipeline
    from ingest.embedding.embedder import Embedder


def document_id(path: str) -> str:
    """A stable, URL-safe id for a catalogued document (its path may hold any character)."""
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass
class Snapshot:
    """One generation of the base and the pipeline over it."""

    generation: str
    pipeline: AnswerPipeline


class ServerServices:
    """Models load once (lazily, on first need); the pipeline is rebuilt only for a new generation."""

    def __init__(self, settings: Settings, embedder_factory: Callable[[], Embedder] | None = None,
                 generator_factory: Callable[[], Generator] | None = None) -> None:
        self.settings = settings
        self._embedder_factory = embedder_factory or (lambda: load_embedder(settings))
        self._generator_factory = generator_factory or (lambda: build_generator(settings))
        self._embedder: Embedder | None = None
        self._generator: Generator | None = None
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        # The base's store (FAISS folder or Milvus): asked which generation is live before every request.
        self.store = knowledge_store(settings)

    @property
    def kb_name(self) -> str:
        return self.settings.server.kb_name or self.settings.kb_path.resolve().name

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._embedder_factory()
            return self._embedder

    @property
    def generator(self) -> Generator:
        with self._lock:
            if self._generator is None:
                self._generator = self._generator_factory()
            return self._generator

    def live_generation(self) -> str | None:
        return self.store.live_generation()

    def snapshot(self) -> Snapshot:
        """The pipeline over the live generation; raises KnowledgeBaseError when there is no base yet."""
        generation = self.live_generation()
        if generation is None:
            raise KnowledgeBaseError(f"{self.store.location}: no knowledge base here yet "
                                     "(upload files or run `python -m ingest` first)")
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        embedder, generator = self.embedder, self.generator
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                # The reranker is always built so each request can switch reranking on or off.
                pipeline = build_pipeline(self.settings, with_reranker=True, generator=generator, embedder=embedder)
                self._snapshot = Snapshot(generation, pipeline)
            return self._snapshot

    def documents(self) -> tuple[str | None, list[DocumentRecord]]:
        """The live generation's name and its catalogued documents (without opening its indexes)."""
        return self.store.live_documents()

    def live_info(self) -> StoreInfo | None:
        """What the live generation holds (embedder, counts), None when there is no base yet."""
        return self.store.live_info()

    def warm_up(self) -> None:
        """Load the models and open the base now, so the first question does not pay for it."""
        _ = self.embedder, self.generator
        if self.live_generation() is not None:
            self.snapshot()
