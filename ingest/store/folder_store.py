"""The default store: a folder of FAISS + BM25 + SQLite generations on this machine, behind the store interface.

The generations, their checksums, the CURRENT pointer and the crash-safe commit are ``kb_layout``, ``kb_writer`` and
``knowledge_base``; this module only presents them as ``store_protocol.KnowledgeStore`` / ``StoreWriter``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ingest.records import ChunkDraft, DocumentRecord
from ingest.settings import IndexSettings
from ingest.store.catalog import Catalog, CatalogError
from ingest.store.kb_layout import committed_generations, generations_dir
from ingest.store.kb_writer import (
    GenerationWriter,
    KeywordBuilder,
    check_pointer_replaceable,
    clean_leftovers,
    collect_garbage,
    generation_state,
    live_state,
    repair_pointer,
)
from ingest.store.knowledge_base import (
    KnowledgeBase,
    KnowledgeBaseError,
    check_generation_files,
    damaged_message,
    keyword_index_problem,
    manifest_info,
    resolve_live,
)
from ingest.store.store_protocol import StoreInfo

log = logging.getLogger(__name__)


def _default_keyword_builder(settings: IndexSettings) -> KeywordBuilder:
    from ingest.store.keyword_index import build_keyword_index

    return lambda ids, texts, out_dir: build_keyword_index(ids, texts, out_dir, settings)


class FolderWriter:
    """``StoreWriter`` over a ``GenerationWriter``: catalog changes in its SQLite copy, vectors added at commit."""

    def __init__(self, writer: GenerationWriter, keyword_builder: KeywordBuilder):
        self._writer = writer
        self._catalog = writer.catalog
        self._keyword_builder = keyword_builder
        self.generation = writer.name
        self.embedder = writer.embedder
        self.dimension = writer.dimension

    def documents(self) -> list[DocumentRecord]:
        return self._catalog.documents()

    def document_with_content(self, content_hash: str) -> DocumentRecord | None:
        return self._catalog.document_with_content(content_hash)

    def put_document(self, record: DocumentRecord) -> None:
        self._catalog.put_document(record)

    def remove_document(self, path: str) -> None:
        self._catalog.remove_document(path)

    def add_chunks(self, content_hash: str, drafts: Sequence[ChunkDraft], vectors: np.ndarray) -> list[int]:
        ids = self._catalog.add_chunks(content_hash, drafts)
        self._writer.add(ids, vectors)
        return ids

    def remove_orphan_contents(self) -> list[int]:
        orphans = self._catalog.remove_orphan_contents()
        self._writer.remove(orphans)
        return orphans

    def commit(self) -> StoreInfo:
        return manifest_info(self._writer.kb_dir, self._writer.commit(self._keyword_builder))

    def abort(self) -> None:
        self._writer.abort()


class FolderStore:
    """``KnowledgeStore`` for the folder at ``kb_dir``."""

    backend = "folder"

    def __init__(self, kb_dir: Path, index_settings: IndexSettings | None = None,
                 keyword_builder: KeywordBuilder | None = None):
        self.kb_dir = Path(kb_dir)
        self.location = str(self.kb_dir)
        self.index_settings = index_settings or IndexSettings()
        self._keyword_builder = keyword_builder or _default_keyword_builder(self.index_settings)

    def live_generation(self) -> str | None:
        # A damaged CURRENT resolves to the newest complete generation, as opening the base does.
        live = resolve_live(self.kb_dir, self.index_settings)
        return live.name if live else None

    def live_info(self) -> StoreInfo | None:
        live = live_state(self.kb_dir)
        return None if live is None else manifest_info(self.kb_dir, live.manifest)

    def live_documents(self) -> tuple[str | None, list[DocumentRecord]]:
        live = live_state(self.kb_dir)
        if live is None:
            return None, []
        check_generation_files(self.kb_dir, live.paths)  # damage anywhere in the catalog is named before it is read
        try:
            catalog = Catalog.open_readonly(live.paths.catalog)
        except CatalogError as exc:
            raise KnowledgeBaseError(damaged_message(self.kb_dir, exc)) from exc
        try:
            return live.name, catalog.documents()
        except sqlite3.Error as exc:
            raise KnowledgeBaseError(damaged_message(self.kb_dir, exc)) from exc
        finally:
            catalog.close()

    def open(self, embedder: str | None = None, dimension: int | None = None) -> KnowledgeBase:
        return KnowledgeBase.open(self.kb_dir, embedder=embedder, dimension=dimension,
                                  index_settings=self.index_settings)

    def prepare_write(self, rebuild: bool = False) -> list[str]:
        check_pointer_replaceable(self.kb_dir)  # a folder or link in CURRENT's place: one line, nothing written
        # A rebuild ignores the live generation, even a damaged pointer that no generation can replace.
        notices = [notice] if not rebuild and (notice := repair_pointer(self.kb_dir)) else []
        for name in clean_leftovers(self.kb_dir):
            log.info("removed %s left by an interrupted ingest", name)
        return notices

    def rewrite_reason(self) -> str:
        live = live_state(self.kb_dir)
        return "" if live is None else keyword_index_problem(live.paths, live.manifest)

    def start_writer(self, embedder: str, dimension: int, rebuild: bool = False) -> FolderWriter:
        writer = GenerationWriter.start(self.kb_dir, embedder, dimension, self.index_settings, rebuild=rebuild)
        return FolderWriter(writer, self._keyword_builder)

    def restore_generation(self, name: str) -> StoreInfo:
        """Commit a new generation holding the content of the committed generation ``name`` (folder bases only:
        ``python -m ingest --use-generation``); the caller holds the writer lock."""
        committed = committed_generations(self.kb_dir)
        if name not in committed:
            listed = ", ".join(committed) or "none"
            raise KnowledgeBaseError(f"{generations_dir(self.kb_dir)} holds no committed generation {name!r} "
                                     f"(committed: {listed})")
        self.prepare_write(rebuild=True)  # the pointer is replaced whatever it says now
        source = generation_state(self.kb_dir, name)
        writer = GenerationWriter.start(self.kb_dir, source.manifest.embedder, source.manifest.dimension,
                                        self.index_settings, source=name)
        try:
            return manifest_info(self.kb_dir, writer.commit(self._keyword_builder))
        except BaseException:
            writer.abort()
            raise

    def live_texts(self) -> list[str]:
        live = live_state(self.kb_dir)
        if live is None:
            return []
        catalog = Catalog.open_readonly(live.paths.catalog)
        try:
            return [text for _, text in catalog.iter_id_text()]
        finally:
            catalog.close()

    def collect_garbage(self) -> list[str]:
        return collect_garbage(self.kb_dir, self.index_settings.keep_generations,
                               self.index_settings.gc_grace_seconds)
