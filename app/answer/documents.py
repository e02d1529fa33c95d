"""Changing one base's documents, for every face (the HTTP API, the page, the MCP server): delete one or several,
re-index one, fetch the original file. Each change is an ordinary ingest generation (``run_ingest`` with
``IngestOptions.remove`` / ``reload``) under the base's writer lock, on the folder store or Milvus: a reader sees
the base before or after, never half; a change while another ingest runs is refused with the ingest's own message
(KnowledgeBaseLockedError); a document that is gone (another tab deleted it) is UnknownDocumentError.

Deleting a document removes an uploaded original with it; a file ingested from the user's own folder is never
touched, and is remembered as excluded so that the next ingest of its folder does not bring it back (naming the file
adds it back: ingest/pipeline/excluded_sources.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.answer.knowledge_bases import UnknownDocumentError, document_id
from app.config import Settings
from app.uploads.upload_ingest import recover_interrupted_uploads
from app.wiring import knowledge_store, run_ingest
from ingest.pipeline.ingest_pipeline import DocumentNotFoundError, IngestOptions
from ingest.pipeline.ingest_report import IngestReport
from ingest.pipeline.source_scan import file_sha256
from ingest.records import DocumentRecord
from ingest.store.kb_lock import WriterLock

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder

EmbedderFactory = Callable[[], "Embedder"]


class OriginalUnavailableError(LookupError):
    """The original file of a document cannot be given: moved, deleted or changed since it was ingested."""


class DocumentFileMissingError(LookupError):
    """A document cannot be re-indexed: its file is gone (the message says what to do)."""


@dataclass(frozen=True)
class DeleteOutcome:
    deleted: list[DocumentRecord]
    report: IngestReport


def is_upload(settings: Settings, path: str) -> bool:
    """Whether the document at ``path`` was uploaded into the base (its file lives in the base's uploads folder)."""
    return Path(path).resolve().parent == settings.upload_path.resolve()


def find_documents(settings: Settings, doc_ids: Sequence[str]) -> list[DocumentRecord]:
    """The live documents with these ids, in the order given; UnknownDocumentError naming the ids not there."""
    store = knowledge_store(settings)
    _, records = store.live_documents()
    by_id = {document_id(r.path): r for r in records}
    unknown = [i for i in dict.fromkeys(doc_ids) if i not in by_id]
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:3]) + (" …" if len(unknown) > 3 else "")
        raise UnknownDocumentError(f"knowledge base {settings.kb_name!r}: no document with id {shown} (deleted "
                                   "already, or never in this base)")
    return [by_id[i] for i in dict.fromkeys(doc_ids)]


def delete_documents(settings: Settings, doc_ids: Sequence[str],
                     embedder_factory: EmbedderFactory | None = None) -> DeleteOutcome:
    """Delete the documents ``doc_ids`` from the base ``settings`` names, in one generation; their uploaded
    originals are removed after the commit. Raises UnknownDocumentError (nothing deleted) when any id is not in
    the base, KnowledgeBaseLockedError when another ingest is writing it."""
    if not doc_ids:
        raise ValueError("no documents to delete")
    with WriterLock(settings.kb_path):  # the ids are read and deleted under one lock: two tabs cannot both delete
        records = find_documents(settings, doc_ids)
        recover_interrupted_uploads(settings)  # an unconfirmed upload must not come in with this run
        paths = [r.path for r in records]
        try:
            report = run_ingest(settings, [], IngestOptions(remove=paths), embedder_factory)
        except DocumentNotFoundError as exc:
            raise UnknownDocumentError(str(exc)) from None
        for record in records:
            if is_upload(settings, record.path):
                # After the commit: a crash before this line leaves the file, which stays excluded from rescans.
                Path(record.path).unlink(missing_ok=True)
    return DeleteOutcome(records, report)


def reindex_document(settings: Settings, doc_id: str, embedder_factory: EmbedderFactory | None = None
                     ) -> tuple[DocumentRecord, IngestReport]:
    """Load and chunk the document again from its file, with the base's current settings, in one generation (its
    previous chunks stay if the file no longer loads: see the report's failures). Raises UnknownDocumentError,
    DocumentFileMissingError when the file is gone, KnowledgeBaseLockedError while another ingest runs."""
    with WriterLock(settings.kb_path):
        record = find_documents(settings, [doc_id])[0]
        if not Path(record.path).is_file():
            raise DocumentFileMissingError(f"{record.path}: the file is gone, so it cannot be read again; restore "
                                           "it, or delete the document")
        try:
            report = run_ingest(settings, [], IngestOptions(reload=[record.path]), embedder_factory)
        except DocumentNotFoundError as exc:
            raise UnknownDocumentError(str(exc)) from None
    return record, report


def original_file(settings: Settings, doc_id: str) -> tuple[DocumentRecord, Path]:
    """The document and its original file, which must still hold the bytes that were ingested: an upload is kept
    by docqa; a file from the user's own folder is given from where it was ingested while it is there unchanged.
    OriginalUnavailableError with the reason otherwise, UnknownDocumentError for an unknown id."""
    record = find_documents(settings, [doc_id])[0]
    path = Path(record.path)
    if not path.is_file():
        raise OriginalUnavailableError(f"{record.path}: the original is no longer there (moved or deleted); the "
                                       "base still holds its text")
    if file_sha256(str(path)) != record.content_hash:
        raise OriginalUnavailableError(f"{record.path}: the file has changed since it was ingested, so it is not "
                                       "the text the base holds; re-index the document to bring the base in line")
    return record, path
