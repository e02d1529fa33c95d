"""The answer pipeline over one knowledge base or several at once, for the long-running faces (the HTTP server,
the MCP server, the chat page): one ``LivePipeline`` per base (reopened when that base commits a new generation),
and for a selection of several bases a pipeline composed over their retrievers (``MultiBaseRetriever``: per-base
retrieval fused by reciprocal rank, every passage naming its base), rebuilt when any of them commits.

A base of a selection that is missing, damaged or still empty is left out with one line
(``pipeline.retriever.notices``, ``app.wiring.kb_notices``); the others answer. One base is exactly that base's
pipeline."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from app.answer.answer_pipeline import AnswerPipeline
from app.answer.knowledge_bases import base_settings
from app.answer.live_pipeline import LivePipeline, Snapshot
from app.config import ConfigError, Settings, base_registry
from app.wiring import build_retriever, knowledge_store
from ingest.store.base_registry import BaseRegistryError, InvalidBaseNameError, UnknownBaseError
from ingest.store.knowledge_base import KnowledgeBaseError
from retrieval.hybrid_retriever import HybridRetriever
from retrieval.multi_base_retriever import MultiBaseRetriever

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder

# Opens the pipeline over one base's live generation (the face passes its loaded models along).
BuildBasePipeline = Callable[[Settings], AnswerPipeline]
# The answer pipeline over a retriever of several bases (the gates and checks, the LLM the face holds).
ComposePipeline = Callable[[MultiBaseRetriever], AnswerPipeline]
# Separates the bases in a selection's generation label and in the "docqa/A+B" model ids of the HTTP API.
SELECTION_JOIN = "+"
# Pipelines over several bases kept at once (the oldest goes first): they share the per-base retrievers, so each
# costs little, but a client naming ever new combinations must not grow the server without end.
MAX_SELECTIONS = 16


def open_bases_retriever(settings: Settings, names: Sequence[str], embedder: Embedder,
                         with_reranker: bool | None = None) -> MultiBaseRetriever:
    """A retriever over the live generations of the bases ``names``, opened now (for a face that answers from a
    fixed selection, such as the LangChain tools). A name no base has is ConfigError; a base that is damaged or
    holds nothing yet is left out with a line (``notices``); KnowledgeBaseError naming every problem when none
    can be read."""
    if not names:
        raise ValueError("name at least one knowledge base")
    registry = base_registry(settings)
    parts: list[HybridRetriever] = []
    problems: list[str] = []
    for name in dict.fromkeys(names):
        try:
            registry.get(name)
        except (InvalidBaseNameError, UnknownBaseError) as exc:
            raise ConfigError(str(exc)) from None
        except BaseRegistryError as exc:
            problems.append(f"knowledge base {name!r} left out: {exc}")
            continue
        chosen = base_settings(settings, name)
        if any(p.base == chosen.kb_name for p in parts):
            continue
        try:
            parts.append(build_retriever(chosen, embedder, with_reranker))
        except (ConfigError, KnowledgeBaseError) as exc:
            problems.append(f"knowledge base {name!r} left out: {exc}")
    if not parts:
        raise KnowledgeBaseError("; ".join(problems))
    return MultiBaseRetriever(parts, settings.retrieval, problems)


class BasePipelines:
    def __init__(self, settings: Settings, build: BuildBasePipeline, compose: ComposePipeline,
                 warm_up: bool = False) -> None:
        """``settings``: the face's settings (their ``kb_name`` is the base used when none is named)."""
        self.settings = settings
        self._build = build
        self._compose = compose
        self._warm_up = warm_up
        self._bases: dict[str, LivePipeline] = {}
        # A selection's names -> (the generations it was composed over, its snapshot).
        self._selections: dict[tuple[str, ...], tuple[tuple[str, ...], Snapshot]] = {}
        self._lock = threading.Lock()

    def base(self, name: str | None) -> Settings:
        """The settings of the base called ``name`` (None: the face's own); ConfigError naming the known bases."""
        return base_settings(self.settings, name)

    def live(self, name: str | None = None) -> LivePipeline:
        """The live pipeline of one base (opened on first use); ConfigError for an unknown or damaged base."""
        settings = self.base(name)
        with self._lock:
            live = self._bases.get(settings.kb_name)
            if live is None:
                live = self._bases[settings.kb_name] = LivePipeline(
                    knowledge_store(settings), lambda previous: self._build(settings), warm_up=self._warm_up)
        return live

    def forget(self, name: str) -> None:
        """Drop what is held for base ``name`` (after it was deleted or renamed: a new base may get its folder)."""
        with self._lock:
            self._bases = {k: v for k, v in self._bases.items() if k.casefold() != name.casefold()}
            self._selections = {k: v for k, v in self._selections.items()
                                if all(n.casefold() != name.casefold() for n in k)}

    def snapshot(self, names: Sequence[str] | None = None) -> Snapshot:
        """The pipeline over the bases ``names`` (none: the face's own base). One base: its live pipeline, errors
        raised as they are (ConfigError for an unknown base, KnowledgeBaseError when it cannot be read or is
        empty). Several: those that can be read, the others left out with a line; KnowledgeBaseError naming
        every problem when none can."""
        wanted = list(dict.fromkeys(names or []))
        if len(wanted) <= 1:
            return self.live(wanted[0] if wanted else None).snapshot()
        parts, labels, problems = [], [], []
        for name in wanted:
            try:
                live = self.live(name)
                snapshot = live.snapshot()
            except (ConfigError, KnowledgeBaseError) as exc:
                problems.append(f"knowledge base {name!r} left out: {exc}")
                continue
            retriever = snapshot.pipeline.retriever
            if getattr(retriever, "base", None) in {p.base for p in parts}:
                continue  # the same base named twice (another letter case)
            parts.append(retriever)
            labels.append(f"{getattr(retriever, 'base', name)}@{snapshot.generation}")
        if not parts:
            raise KnowledgeBaseError("; ".join(problems))
        key = tuple(wanted)
        state = (*labels, *problems)
        with self._lock:
            cached = self._selections.get(key)
            if cached is not None and cached[0] == state:
                return cached[1]
        pipeline = self._compose(MultiBaseRetriever(parts, self.settings.retrieval, problems))
        snapshot = Snapshot(SELECTION_JOIN.join(labels), pipeline)
        with self._lock:
            self._selections.pop(key, None)
            self._selections[key] = (state, snapshot)
            while len(self._selections) > MAX_SELECTIONS:
                self._selections.pop(next(iter(self._selections)))
        return snapshot
