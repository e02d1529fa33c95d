"""A knowledge base's documents over HTTP: list, upload, delete one or several, re-index one, download the
original, and a document's chunks — ``/v1/bases/{name}/documents/...`` for any base, and the same handlers behind
``/v1/kb/documents`` for the server's own base (app/server/kb_routes.py).

Every change goes through the one service the page and the MCP server use (app/answer/documents.py, uploads through
app/uploads/upload_ingest.py): an ordinary ingest generation under the base's writer lock, in a worker thread, so
questions go on reading the last committed generation meanwhile."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from app.answer.documents import (
    DocumentFileMissingError,
    OriginalUnavailableError,
    delete_documents,
    is_upload,
    original_file,
    reindex_document,
)
from app.answer.knowledge_bases import UnknownDocumentError, document_chunks, document_id
from app.config import Settings, base_registry, settings_for_base
from app.server.errors import ApiError
from app.server.openai_schema import DeleteDocumentsRequest
from app.server.services import ServerServices
from app.server.upload_receiver import UploadRefused, receive_uploads
from app.uploads.saving import discard
from app.uploads.upload_ingest import ingest_uploads
from app.wiring import knowledge_store
from ingest.pipeline.ingest_report import IngestReport
from ingest.records import DocumentRecord
from ingest.store.base_registry import BaseRegistryError, InvalidBaseNameError, UnknownBaseError
from ingest.store.kb_lock import KnowledgeBaseLockedError
from ingest.store.knowledge_base import KnowledgeBaseError

router = APIRouter()
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]|^\.\.")


def services_of(request: Request) -> ServerServices:
    return request.app.state.services


def base_or_404(services: ServerServices, name: str) -> Settings:
    """The settings of the base called ``name``: 400 for a name no base could have, 404 for an unknown base (the
    message names the known ones), 503 for a damaged one (what is wrong with it)."""
    try:
        base_registry(services.settings).get(name)
    except InvalidBaseNameError as exc:
        raise ApiError(400, str(exc), code="invalid_base_name") from None
    except UnknownBaseError as exc:
        raise ApiError(404, str(exc), code="base_not_found") from None
    except BaseRegistryError as exc:
        raise ApiError(503, str(exc), "server_error", "base_damaged") from None
    if name.casefold() == services.settings.kb_name.casefold():
        return services.settings
    return settings_for_base(services.settings, name)


def report_json(report: IngestReport | None) -> dict | None:
    if report is None:
        return None
    return {"generation": report.generation, "committed": report.committed, "files_added": report.files_added,
            "files_updated": report.files_updated, "files_removed": report.files_removed,
            "files_unchanged": report.files_skipped, "files_excluded": report.files_excluded,
            "chunks_added": report.chunks_added, "chunks_removed": report.chunks_removed,
            "chunks_total": report.chunks_total, "documents_total": report.documents_total,
            "seconds": round(report.seconds, 3),
            "failures": [{"file": f.path, "reason": f.reason} for f in report.failures]}


def locked(exc: KnowledgeBaseLockedError) -> ApiError:
    return ApiError(409, f"the knowledge base is being written by another ingest ({exc}); try again when it is done",
                    code="kb_locked")


def document_json(settings: Settings, doc: DocumentRecord) -> dict:
    return {"id": document_id(doc.path), "path": doc.path, "name": os.path.basename(doc.path), "title": doc.title,
            "file_type": doc.file_type, "chunks": doc.n_chunks, "size": doc.size, "updated_at": doc.updated_at,
            "uploaded": is_upload(settings, doc.path)}


async def list_documents_json(settings: Settings) -> dict:
    """The live generation and its documents, or a 503 JSON error saying why the base cannot be read."""
    try:
        generation, documents = await run_in_threadpool(knowledge_store(settings).live_documents)
    except KnowledgeBaseError as exc:
        raise ApiError(503, str(exc), "server_error", "kb_unavailable") from None
    return {"base": settings.kb_name, "generation": generation,
            "documents": [document_json(settings, d) for d in documents]}


def _refused_name(name: str) -> str | None:
    """Why an upload's file name refuses the whole request (None when it is a plain file name)."""
    if _UNSAFE_NAME.search(name) or name.strip() in ("", ".", ".."):
        # A browser sends a bare file name; a path or control characters mean a confused or hostile client.
        return (f"upload name {name!r} is not a plain file name (no folders, '..' or control characters); "
                "nothing was saved")
    return None


@asynccontextmanager
async def _upload_slot(request: Request) -> AsyncIterator[None]:
    """One of ``server.max_concurrent_uploads`` places, taken before the body is read (429 when none is free)."""
    state = request.app.state
    server = services_of(request).settings.server
    if state.uploads_in_flight >= server.max_concurrent_uploads:
        raise ApiError(429, f"{server.max_concurrent_uploads} uploads are already being received "
                            f"(server.max_concurrent_uploads); retry in {server.retry_after_s} s",
                       "rate_limit_error", "too_many_uploads", headers={"Retry-After": str(server.retry_after_s)})
    state.uploads_in_flight += 1
    try:
        yield
    finally:
        state.uploads_in_flight -= 1


async def upload_into(request: Request, settings: Settings) -> dict:
    """Receive a multipart upload into the base ``settings`` names and ingest it (the page's upload path)."""
    services = services_of(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "upload files as multipart/form-data (field name 'files')")
    async with _upload_slot(request):
        try:
            received = await receive_uploads(content_type, request.stream(), settings.upload_path, settings.limits,
                                             services.settings.server.max_upload_files, _refused_name)
        except UploadRefused as exc:
            raise ApiError(400, str(exc), param="files") from None
        try:
            if not received.staged and not received.failures:
                raise ApiError(400, "no files in the upload (send them in form field 'files')")
            embedder = await run_in_threadpool(lambda: services.embedder)
            outcome = await run_in_threadpool(ingest_uploads, received.staged, settings, embedder=embedder)
        except KnowledgeBaseLockedError as exc:
            raise locked(exc) from None
        except KnowledgeBaseError as exc:
            raise ApiError(409, str(exc), code="kb_error") from None
        finally:
            discard(received.staged)  # what the ingest did not put under a name
    failures = received.failures + outcome.failures
    results = ([{"name": n, "status": "ingested"} for n in outcome.ingested]
               + [{"name": n, "status": "unchanged"} for n in outcome.unchanged]
               + [{"name": f.name, "status": "failed", "reason": f.reason} for f in failures])
    return {"base": settings.kb_name, "files": results, "report": report_json(outcome.report),
            "notices": outcome.notices}


async def delete_from(request: Request, settings: Settings, doc_ids: list[str]) -> dict:
    """Delete documents of the base in one generation (404 when any is not there: nothing is deleted then)."""
    services = services_of(request)
    try:
        outcome = await run_in_threadpool(delete_documents, settings, doc_ids, lambda: services.embedder)
    except UnknownDocumentError as exc:
        raise ApiError(404, f"{exc} (GET the base's documents for their ids)", code="not_found") from None
    except KnowledgeBaseLockedError as exc:
        raise locked(exc) from None
    except KnowledgeBaseError as exc:
        raise ApiError(409, str(exc), code="kb_error") from None
    deleted = [{"id": document_id(d.path), "path": d.path, "uploaded": is_upload(settings, d.path)}
               for d in outcome.deleted]
    return {"base": settings.kb_name, "deleted": deleted, "report": report_json(outcome.report)}


# --- /v1/bases/{name}/documents -----------------------------------------------------------------------------------

@router.get("/v1/bases/{name}/documents")
async def base_documents(name: str, request: Request) -> dict:
    return await list_documents_json(base_or_404(services_of(request), name))


@router.post("/v1/bases/{name}/documents")
async def base_upload(name: str, request: Request) -> dict:
    return await upload_into(request, base_or_404(services_of(request), name))


@router.delete("/v1/bases/{name}/documents/{doc_id}")
async def base_delete_document(name: str, doc_id: str, request: Request) -> dict:
    return await delete_from(request, base_or_404(services_of(request), name), [doc_id])


@router.post("/v1/bases/{name}/documents/delete")
async def base_delete_documents(name: str, body: DeleteDocumentsRequest, request: Request) -> dict:
    """Several documents in one generation: ``{"ids": [...]}``."""
    return await delete_from(request, base_or_404(services_of(request), name), body.ids)


@router.post("/v1/bases/{name}/documents/{doc_id}/reindex")
async def base_reindex_document(name: str, doc_id: str, request: Request) -> dict:
    settings = base_or_404(services_of(request), name)
    services = services_of(request)
    try:
        record, report = await run_in_threadpool(reindex_document, settings, doc_id, lambda: services.embedder)
    except UnknownDocumentError as exc:
        raise ApiError(404, str(exc), code="not_found") from None
    except DocumentFileMissingError as exc:
        raise ApiError(409, str(exc), code="file_missing") from None
    except KnowledgeBaseLockedError as exc:
        raise locked(exc) from None
    return {"base": settings.kb_name, "document": document_json(settings, record), "report": report_json(report)}


@router.get("/v1/bases/{name}/documents/{doc_id}/original")
async def base_original(name: str, doc_id: str, request: Request) -> FileResponse:
    """The original file, as an attachment (never shown inline: a document is not a page of this server)."""
    settings = base_or_404(services_of(request), name)
    try:
        record, path = await run_in_threadpool(original_file, settings, doc_id)
    except UnknownDocumentError as exc:
        raise ApiError(404, str(exc), code="not_found") from None
    except OriginalUnavailableError as exc:
        raise ApiError(410, str(exc), code="original_unavailable") from None
    filename = os.path.basename(record.path)
    return FileResponse(path, media_type="application/octet-stream",
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
                                 "X-Content-Type-Options": "nosniff"})


@router.get("/v1/bases/{name}/documents/{doc_id}/chunks")
async def base_document_chunks(name: str, doc_id: str, request: Request) -> dict:
    """How the document was split: each chunk's text, page, heading path and offsets, in reading order."""
    settings = base_or_404(services_of(request), name)
    try:
        overview, chunks = await run_in_threadpool(document_chunks, knowledge_store(settings), doc_id)
    except UnknownDocumentError as exc:
        raise ApiError(404, str(exc), code="not_found") from None
    except KnowledgeBaseError as exc:
        raise ApiError(503, str(exc), "server_error", "kb_unavailable") from None
    return {"base": settings.kb_name, "id": overview.id, "name": overview.name, "path": overview.path,
            "chunks": [{"ordinal": c.ordinal, "page": c.page, "location": c.page_label, "heading": c.heading_path,
                        "char_start": c.char_start, "char_end": c.char_end, "text": c.text} for c in chunks]}
