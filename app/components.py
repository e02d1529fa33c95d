"""What the chat page loads once per process (models, knowledge base) and reads on every rerun (its status).

Streamlit reruns the page script on every interaction; ``st.cache_resource`` keeps one loaded pipeline per
(knowledge-base generation, settings) so models load once, and a new generation committed by an upload or by
``python -m ingest`` is picked up on the next question. Per-question knobs from the sidebar (top-k, rerank,
evidence threshold) give a light view of the cached pipeline instead of a reload.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from app.answer_pipeline import AnswerPipeline, build_pipeline
from app.config import Settings
from ingest.catalog import Catalog, CatalogError
from ingest.knowledge_base import KnowledgeBaseError
from ingest.kb_layout import generation_paths, read_current
from ingest.manifest import Manifest, ManifestError, read_manifest
from ingest.records import DocumentRecord


@dataclass
class KnowledgeBaseStatus:
    kb_dir: Path
    manifest: Manifest
    documents: list[DocumentRecord] = field(default_factory=list)


def read_kb_status(kb_dir: Path) -> KnowledgeBaseStatus | None:
    """The live generation's manifest and document list (cheap: JSON + SQLite), or None when there is no base."""
    name = read_current(kb_dir)
    if name is None:
        return None
    paths = generation_paths(kb_dir, name)
    try:
        manifest = read_manifest(paths.manifest)
        catalog = Catalog.open_readonly(paths.catalog)
    except (ManifestError, CatalogError, OSError):
        return None
    try:
        return KnowledgeBaseStatus(Path(kb_dir), manifest, catalog.documents())
    finally:
        catalog.close()


def settings_key(settings: Settings) -> str:
    """A stable text form of the settings that decide what gets loaded (used as a cache key)."""
    return json.dumps(dataclasses.asdict(settings), default=str, sort_keys=True)


@st.cache_resource(show_spinner=False, max_entries=2)
def _cached_pipeline(key: str, generation: str, _settings: Settings) -> AnswerPipeline:
    # The reranker is always built so the sidebar can switch reranking on and off without a reload.
    settings = dataclasses.replace(_settings, retrieval=dataclasses.replace(_settings.retrieval, rerank=True))
    return build_pipeline(settings)


# (settings key, generation) pairs loaded in this process, so the page can say what a first load is doing.
_loaded: set[tuple[str, str]] = set()


def _key(settings: Settings) -> tuple[str, str]:
    return settings_key(settings), read_current(settings.kb_path) or ""


def load_pipeline(settings: Settings) -> AnswerPipeline:
    """The pipeline for the live knowledge base, built once per process and generation.

    Raises KnowledgeBaseError when there is no knowledge base yet.
    """
    key = _key(settings)
    if not key[1]:
        # Checked before anything loads: without a knowledge base there is nothing to answer from.
        raise KnowledgeBaseError(f"{settings.kb_path}: no knowledge base here yet (run `python -m ingest` first)")
    pipeline = _cached_pipeline(key[0], key[1], settings)
    _loaded.add(key)
    return pipeline


def is_loaded(settings: Settings) -> bool:
    """Whether ``load_pipeline`` will return at once (models and this generation already loaded)."""
    return _key(settings) in _loaded


def configured_pipeline(base: AnswerPipeline, settings: Settings) -> AnswerPipeline:
    """A pipeline sharing ``base``'s loaded components but using ``settings`` for retrieval and the answer gate."""
    retriever = copy.copy(base.retriever)
    retriever.settings = settings.retrieval
    return AnswerPipeline(retriever, base.generator, None, settings, support_scorer=base.support_scorer)
