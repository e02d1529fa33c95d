"""What the knowledge bases hold, for any face that shows it: the bases, a base's documents, a document's chunks.

Everything goes through each base's store (``KnowledgeStore``: the FAISS folder or Milvus, as configured) and reads
its live generation, so listing loads no model and always sees the latest commit. A document is named by a stable
id made from its path (a path may hold any character, an id goes into a URL). The caller gives the stores
(``app.wiring.knowledge_store``): this module opens nothing it was not handed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.config import ConfigError, Settings, base_registry, settings_for_base
from ingest.records import Chunk, DocumentRecord
from ingest.store.base_registry import BaseRegistryError
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.store.store_protocol import KnowledgeStore

StoreFor = Callable[[Settings], KnowledgeStore]


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


def base_settings(settings: Settings, name: str | None) -> Settings:
    """The settings of the base called ``name`` (None: the configured one); ConfigError naming the known bases."""
    return settings if name is None else settings_for_base(settings, name)


def list_bases(settings: Settings, store_for: StoreFor) -> list[BaseOverview]:
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
            info = store_for(base_settings(settings, base.name)).live_info()
        except (ConfigError, KnowledgeBaseError, OSError) as exc:
            overviews.append(BaseOverview(base.name, None, 0, 0, str(exc)))
            continue
        overviews.append(BaseOverview(base.name, info.generation, info.n_documents, info.n_chunks) if info
                         else BaseOverview(base.name, None, 0, 0))
    return overviews


def list_documents(store: KnowledgeStore) -> list[DocumentOverview]:
    """The documents of the base in ``store`` (none when nothing was committed), by path."""
    _, records = store.live_documents()
    return sorted((_overview(r) for r in records), key=lambda d: d.path)


def document_chunks(store: KnowledgeStore, doc_id: str) -> tuple[DocumentOverview, list[Chunk]]:
    """The document with id ``doc_id`` and its chunks in reading order; UnknownDocumentError when there is none.
    Opens the live generation without checking its embedder: nothing is searched."""
    _, records = store.live_documents()
    record = next((r for r in records if document_id(r.path) == doc_id), None)
    if record is None:
        raise UnknownDocumentError(f"{store.location}: no document with id {doc_id!r} (list the documents for "
                                   "their ids)")
    snapshot = store.open()
    try:
        # The store's reading interface has "the chunks of a document near an ordinal": every ordinal of the
        # document lies within n_chunks of its first chunk.
        first = Chunk(chunk_id=-1, doc_id=record.content_hash, source=record.path, text="", ordinal=0)
        return _overview(record), snapshot.neighbours(first, window=max(record.n_chunks, 1))
    finally:
        snapshot.close()
