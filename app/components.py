"""What the chat page loads once per process (models, knowledge base) and reads on every rerun (its status).

Streamlit reruns the page script on every interaction; ``st.cache_resource`` keeps one loaded pipeline per
(knowledge-base generation, settings) so models load once, and a new generation committed by an upload or by
``python -m ingest`` is picked up on the next question. Per-question knobs from the sidebar (top-k, rerank,
evidence threshold, decoding) are passed with each question (``AskOptions``), never by changing the pipeline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from app.answer_pipeline import AnswerPipeline
from app.config import Settings
from app.wiring import build_pipeline
from ingest.records import DocumentRecord
from ingest.store.catalog import Catalog, CatalogError
from ingest.store.kb_layout import generation_paths, read_current
from ingest.store.knowledge_base import KnowledgeBaseMissingError
from ingest.store.manifest import Manifest, ManifestError, read_manifest


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
    return json.dumps(settings.model_dump(mode="json"), sort_keys=True)


@st.cache_resource(show_spinner=False, max_entries=2)
def _cached_pipeline(key: str, generation: str, _settings: Settings) -> AnswerPipeline:
    # The reranker is always built so the sidebar can switch reranking on and off without a reload.
    return build_pipeline(_settings, with_reranker=True)


# (settings key, generation) pairs loaded in this process, so the page can say what a first load is doing.
_loaded: set[tuple[str, str]] = set()


def _key(settings: Settings) -> tuple[str, str]:
    return settings_key(settings), read_current(settings.kb_path) or ""


def load_pipeline(settings: Settings) -> AnswerPipeline:
    """The pipeline for the live knowledge base, built once per process and generation.

    Raises KnowledgeBaseMissingError when there is no knowledge base yet, KnowledgeBaseError when it is damaged
    or was built with another embedder.
    """
    key = _key(settings)
    if not key[1]:
        # Checked before anything loads: without a knowledge base there is nothing to answer from.
        raise KnowledgeBaseMissingError(f"{settings.kb_path}: no knowledge base here yet (run `python -m ingest` first)")
    pipeline = _cached_pipeline(key[0], key[1], settings)
    _loaded.add(key)
    return pipeline


def is_loaded(settings: Settings) -> bool:
    """Whether ``load_pipeline`` will return at once (models and this generation already loaded)."""
    return _key(settings) in _loaded
