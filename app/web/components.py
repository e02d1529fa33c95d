"""What the web page loads once per process (models, knowledge bases) and reads on every rerun (a base's status).

Streamlit reruns the page script on every interaction; ``st.cache_resource`` keeps, per configuration, one live
pipeline per knowledge base and one per selection of several (app/answer/base_selection.py), all sharing one
embedder and one LLM: models load once per process, and a new generation committed by an upload or by
``python -m ingest`` is opened, with the same models, at the next question. Per-question knobs from the sidebar
(passages, rerank, evidence threshold, decoding) are passed with each question (``AskOptions``), never by changing
the pipeline.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from app.answer.answer_pipeline import AnswerPipeline
from app.answer.base_selection import BasePipelines
from app.answer.live_pipeline import LivePipeline
from app.config import ConfigError, Settings
from app.wiring import assemble_pipeline, build_pipeline
from ingest.records import DocumentRecord
from ingest.store.catalog import Catalog, CatalogError
from ingest.store.kb_layout import GenerationPaths, generation_paths
from ingest.store.knowledge_base import (
    KnowledgeBaseError,
    check_generation_files,
    damaged_message,
    manifest_info,
    resolve_live,
)
from ingest.store.manifest import Manifest
from ingest.store.store_protocol import KnowledgeStore, StoreInfo

# What a base sets for itself (app/config.py settings_for_base); the models do not depend on it.
_PER_BASE_FIELDS = {"kb_name", "base_dir", "chunking", "ocr"}


@dataclass
class KnowledgeBaseStatus:
    location: str
    info: StoreInfo | None
    documents: list[DocumentRecord] = field(default_factory=list)
    # Why the base cannot be read (the same line the CLI prints), or what opening it repaired; "" when all is well.
    problem: str = ""
    notice: str = ""


def read_kb_status(settings: Settings) -> KnowledgeBaseStatus | None:
    """The live generation's description and document list, or None when there is no base; a damaged or
    unreachable base gives a status whose ``problem`` says what is wrong, as the CLI would."""
    if settings.store.backend == "folder":
        return _folder_status(settings.kb_path)
    store = _store(settings)
    try:
        info = store.live_info()
        _, documents = store.live_documents() if info else (None, [])
    except KnowledgeBaseError as exc:
        return KnowledgeBaseStatus(store.location, None, problem=str(exc))
    return None if info is None else KnowledgeBaseStatus(store.location, info, documents)


def _folder_status(kb_dir: Path) -> KnowledgeBaseStatus | None:
    """The folder store's status, cheap (JSON + SQLite) and with the files checked as the CLI checks them."""
    kb_dir = Path(kb_dir)
    try:
        live = resolve_live(kb_dir)
    except KnowledgeBaseError as exc:
        return KnowledgeBaseStatus(str(kb_dir), None, problem=str(exc))
    if live is None:
        return None
    paths = generation_paths(kb_dir, live.name)
    try:
        manifest = _checked_manifest(str(kb_dir), live.name, _stamp(paths))
        catalog = Catalog.open_readonly(paths.catalog)
    except KnowledgeBaseError as exc:
        return KnowledgeBaseStatus(str(kb_dir), None, problem=str(exc))
    except (CatalogError, OSError) as exc:
        return KnowledgeBaseStatus(str(kb_dir), None, problem=damaged_message(kb_dir, exc))
    try:
        return KnowledgeBaseStatus(str(kb_dir), manifest_info(kb_dir, manifest), catalog.documents(),
                                   notice=live.notice)
    except sqlite3.DatabaseError as exc:
        return KnowledgeBaseStatus(str(kb_dir), None, problem=damaged_message(kb_dir, exc))
    finally:
        catalog.close()


def _stamp(paths: GenerationPaths) -> tuple:
    """What changes when a generation's files are touched (they never are, unless damaged or restored)."""
    stamp = []
    for path in (paths.manifest, paths.index, paths.catalog):
        try:
            info = path.stat()
            stamp.append((info.st_mtime_ns, info.st_size, info.st_mode))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


@functools.lru_cache(maxsize=8)
def _checked_manifest(kb_dir: str, name: str, stamp: tuple) -> Manifest:
    """The sidebar checks a generation's files as the CLI does (checksums), once per generation and file state:
    the page reruns on every click."""
    return check_generation_files(Path(kb_dir), generation_paths(Path(kb_dir), name))


def models_key(settings: Settings) -> str:
    """The settings that decide which models load, without those that belong to a base (its name, folder and
    chunking/OCR): every base of the page shares one embedder and one LLM."""
    return json.dumps(settings.model_dump(mode="json", exclude=_PER_BASE_FIELDS), sort_keys=True)


@dataclass
class _PageModels:
    """The embedder and LLM the first pipeline loaded, handed to the pipelines of the other bases."""

    generator: object | None = None
    embedder: object | None = None
    # Two sessions opening two bases at once: the second waits for the first one's models instead of loading its own.
    loading: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource(show_spinner=False)
def _page_models(key: str) -> _PageModels:
    return _PageModels()


def _open_pipeline(settings: Settings) -> AnswerPipeline:
    """The pipeline over one base's live generation, with the models another pipeline of the page already loaded,
    if any (every base shares them). The reranker is always built so the sidebar can switch reranking on and off
    without a reload."""
    models = _page_models(models_key(settings))
    with models.loading:
        if models.generator is None:
            pipeline = build_pipeline(settings, with_reranker=True)
            models.generator, models.embedder = pipeline.generator, getattr(pipeline.retriever, "embedder", None)
            return pipeline
    return build_pipeline(settings, with_reranker=True, generator=models.generator, embedder=models.embedder)


@st.cache_resource(show_spinner=False)
def _pipelines(key: str, _settings: Settings) -> BasePipelines:
    # One live pipeline per base (a Milvus store keeps its connection across the page's reruns), and one per
    # selection of several bases, composed over theirs. Each new pipeline is warmed while the page says it is
    # loading, so the first question is as fast as later ones.
    models = _page_models(key)
    return BasePipelines(_settings, _open_pipeline,
                         lambda retriever: assemble_pipeline(retriever, models.generator, models.embedder, _settings),
                         warm_up=True)


def _live(settings: Settings) -> LivePipeline:
    return _pipelines(models_key(settings), settings).live(settings.kb_name)


def _store(settings: Settings) -> KnowledgeStore:
    return _live(settings).store


def load_pipeline(settings: Settings) -> AnswerPipeline:
    """The pipeline for the live generation of the base ``settings`` name, opened once per process and generation.

    Raises KnowledgeBaseMissingError when there is no knowledge base yet, KnowledgeBaseError when it is damaged.
    """
    return _live(settings).snapshot().pipeline


def load_selection(settings: Settings, names: Sequence[str]) -> AnswerPipeline:
    """The pipeline over the bases ``names`` at once (app/answer/base_selection.py: retrieval fused across them,
    every passage naming its base; one name is that base's own pipeline). A base that cannot be read is left out
    with a line (``kb_notices``); KnowledgeBaseError when none can, ConfigError for a single unknown base."""
    return _pipelines(models_key(settings), settings).snapshot(list(names)).pipeline


def is_loaded(settings: Settings, names: Sequence[str] = ()) -> bool:
    """Whether loading the base ``settings`` names (and the others of ``names``) will return at once: models and
    their live generations already loaded."""
    pipelines = _pipelines(models_key(settings), settings)
    try:
        return all(pipelines.live(name).is_current() for name in dict.fromkeys([settings.kb_name, *names]))
    except (KnowledgeBaseError, ConfigError):
        return False
