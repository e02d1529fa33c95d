"""What the knowledge bases hold, for any face that shows it: the bases, a base's documents, a document's chunks.

Everything is read from a base's live generation, its catalog opened read-only and closed again, so listing never
loads a model, never holds a base open and always sees the latest commit. A document is named by a stable id made
from its path (a path may hold any character, an id goes into a URL)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from app.config import ConfigError, Settings, base_registry, settings_for_base
from ingest.records import Chunk, DocumentRecord
from ingest.store.base_registry import BaseRegistryError
from ingest.store.catalog import Catalog
from ingest.store.kb_layout import generation_paths
from ingest.store.knowledge_base import KnowledgeBaseError, resolve_live


class UnknownDocumentError(LookupError):
    """No document with that id in the base (the message names the base and the id)."""


def document_id(path: str) -> str:
    """A stable, URL-safe id for a catalogued document."""
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(frozen=True)
class BaseOverview:
    name: str
    # The live generation (None: nothing committed yet) and what it holds.
    generation: str | None
    documents: int
    chunks: int
    # Why the base cannot be read now ("" when it can).
    problem: str = ""


@dataclass(frozen=True)
class DocumentOverview:
    id: str
    path: str
    title: str
    file_type: str
    chunks: int
    updated_at: float

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path


def _overview(record: DocumentRecord) -> DocumentOverview:
    return DocumentOverview(document_id(record.path), record.path, record.title, record.file_type, record.n_chunks,
                            record.updated_at or record.mtime)


def _open_live_catalog(kb_path: Path) -> tuple[str, Catalog] | None:
    live = resolve_live(kb_path)
    if live is None:
        return None
    return live.name, Catalog.open_readonly(generation_paths(kb_path, live.name).catalog)


def base_settings(settings: Settings, name: str | None) -> Settings:
    """The settings of the base called ``name`` (None: the configured one); ConfigError naming the known bases."""
    return settings if name is None else settings_for_base(settings, name)


def list_bases(settings: Settings) -> list[BaseOverview]:
    """Every knowledge base under the data folder, the default one first, with its document and chunk counts."""
    try:
        bases = base_registry(settings).list()
    except BaseRegistryError as exc:
        raise ConfigError(str(exc)) from None
    overviews = []
    for base in bases:
        if base.problem:
            overviews.append(BaseOverview(base.name, None, 0, 0, base.problem))
            continue
        try:
            opened = _open_live_catalog(base.kb_dir)
        except (KnowledgeBaseError, OSError) as exc:
            overviews.append(BaseOverview(base.name, None, 0, 0, str(exc)))
            continue
        if opened is None:
            overviews.append(BaseOverview(base.name, None, 0, 0))
            continue
        generation, catalog = opened
        try:
            overviews.append(BaseOverview(base.name, generation, catalog.count_documents(), catalog.count_chunks()))
        finally:
            catalog.close()
    return overviews


def list_documents(kb_path: Path) -> list[DocumentOverview]:
    """The documents of the base at ``kb_path`` (none when nothing was committed), by path."""
    opened = _open_live_catalog(kb_path)
    if opened is None:
        return []
    _, catalog = opened
    try:
        return [_overview(record) for record in catalog.documents()]
    finally:
        catalog.close()


def document_chunks(kb_path: Path, doc_id: str) -> tuple[DocumentOverview, list[Chunk]]:
    """The document with id ``doc_id`` and its chunks in reading order; UnknownDocumentError when there is none."""
    opened = _open_live_catalog(kb_path)
    if opened is not None:
        _, catalog = opened
        try:
            for record in catalog.documents():
                if document_id(record.path) == doc_id:
                    return _overview(record), catalog.document_chunks(record.content_hash)
        finally:
            catalog.close()
    raise UnknownDocumentError(f"{kb_path}: no document with id {doc_id!r} (list the documents for their ids)")
