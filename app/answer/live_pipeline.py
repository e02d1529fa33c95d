"""The answer pipeline over the knowledge base's live generation, reopened when a new generation is committed (an
upload, a re-scan, ``python -m ingest``). Long-running faces hold one: the chat page and the HTTP server.

A caller takes a ``Snapshot`` (the generation and the pipeline over it) and keeps it for its whole question, so a
commit in the middle never mixes two generations. Opening a new generation is the face's ``build`` callable, given
the previous pipeline so it can hand its loaded models (embedder, LLM) to the new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from app.answer.answer_pipeline import AnswerPipeline
from ingest.store.knowledge_base import KnowledgeBaseMissingError
from ingest.store.store_protocol import KnowledgeStore

# Opens the pipeline over the live generation; gets the pipeline of the generation before, or None the first time.
BuildPipeline = Callable[[AnswerPipeline | None], AnswerPipeline]


@dataclass(frozen=True)
class Snapshot:
    """One generation of the base and the pipeline over it."""

    generation: str
    pipeline: AnswerPipeline


class LivePipeline:
    """Holds the pipeline of the live generation; thread-safe (several page sessions or requests at once)."""

    def __init__(self, store: KnowledgeStore, build: BuildPipeline, warm_up: bool = False) -> None:
        """``store`` says which generation is live (the folder base, or Milvus); ``warm_up``: evaluate the prompt
        prefixes of each new pipeline while it is opened (``AnswerPipeline.warm_up``), so the first question on it is
        as fast as later ones."""
        self.store = store
        self._build = build
        self._warm_up = warm_up
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def live_generation(self) -> str | None:
        """The generation to read now (None when nothing was ever committed); KnowledgeBaseError when the base
        cannot be read (CURRENT damaged and no generation verifies; a store that cannot be reached)."""
        return self.store.live_generation()

    def is_current(self) -> bool:
        """Whether ``snapshot`` returns at once (the live generation is already open)."""
        current = self._snapshot
        return current is not None and current.generation == self.live_generation()

    def snapshot(self) -> Snapshot:
        """The pipeline over the live generation, opened now if it is new. Raises KnowledgeBaseMissingError when
        there is no base yet, KnowledgeBaseError when it cannot be read or was built with another embedder."""
        generation = self.live_generation()
        if generation is None:  # checked before anything loads: there is nothing to answer from
            raise KnowledgeBaseMissingError(f"{self.store.location}: no knowledge base here yet "
                                            "(upload files or run `python -m ingest` first)")
        current = self._snapshot
        if current is not None and current.generation == generation:
            return current
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                pipeline = self._build(self._snapshot.pipeline if self._snapshot else None)
                if self._warm_up:
                    pipeline.warm_up()
                self._snapshot = Snapshot(generation, pipeline)
            return self._snapshot
