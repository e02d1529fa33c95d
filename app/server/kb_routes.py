"""Knowledge-base endpoints: status, documents (list, upload, delete), re-scan and retrieval with every score.

Uploads go through the same sanitised, size-limited, incremental ingest as the chat page
(``app.uploads.upload_ingest.ingest_uploads``). Writes run in worker threads and hold the base's writer lock;
questions go on reading the last committed generation meanwhile."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.server.errors import ApiError
from app.server.openai_schema import RetrieveRequest
from app.server.services import ServerServices, document_id
from app.uploads.upload_ingest import ingest_uploads
from app.wiring import run_ingest
from ingest.pipeline.ingest_pipeline import IngestOptions
from ingest.pipeline.ingest_report import IngestReport
from ingest.records import DocumentRecord
from ingest.store.kb_layout import generation_paths
from ingest.store.kb_lock import KnowledgeBaseLockedError, WriterLock
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.store.manifest import ManifestError, read_manifest
from retrieval.question_check import QuestionError, validate_question
from retrieval.results import result_as_dict

router = APIRouter()
# Open to every caller (liveness checks carry no key); it tells nothing about the base.
open_router = APIRouter()
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]|^\.\.")


def _services(request: Request) -> ServerServices:
    return request.app.state.services


def _is_upload(services: ServerServices, path: str) -> bool:
    upload_dir = services.settings.upload_path.resolve()
    return Path(path).resolve().parent == upload_dir


def _document(services: ServerServices, doc: DocumentRecord) -> dict:
    return {"id": document_id(doc.path), "path": doc.path, "name": os.path.basename(doc.path), "title": doc.title,
            "file_type": doc.file_type, "chunks": doc.n_chunks, "size": doc.size, "updated_at": doc.updated_at,
            "uploaded": _is_upload(services, doc.path)}


def _report(report: IngestReport | None) -> dict | None:
    if report is None:
        return None
    return {"generation": report.generation, "committed": report.committed, "files_added": report.files_added,
            "files_updated": report.files_updated, "files_removed": report.files_removed,
            "files_unchanged": report.files_skipped, "chunks_added": report.chunks_added,
            "chunks_removed": report.chunks_removed, "chunks_total": report.chunks_total,
            "documents_total": report.documents_total, "seconds": round(report.seconds, 3),
            "failures": [{"file": f.path, "reason": f.reason} for f in report.failures]}


def _locked(exc: KnowledgeBaseLockedError) -> ApiError:
    return ApiError(409, f"the knowledge base is being written by another ingest ({exc}); try again when it is done",
                    code="kb_locked")


@open_router.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/v1/kb/status")
async def status(request: Request) -> dict:
    services = _services(request)
    generation, documents = await run_in_threadpool(services.documents)
    manifest = None
    if generation is not None:
        try:
            manifest = read_manifest(generation_paths(services.settings.kb_path, generation).manifest)
        except (ManifestError, OSError):
            manifest = None
    queue = request.app.state.queue.stats()
    return {"kb_name": services.kb_name, "generation": generation, "documents": len(documents),
            "chunks": manifest.n_chunks if manifest else 0, "embedder": manifest.embedder if manifest else None,
            "llm": services.settings.generation.model, "models": ["docqa", f"docqa:{services.kb_name}"],
            "queue": vars(queue), "api_key_required": request.app.state.auth.required}


@router.get("/v1/kb/documents")
async def list_documents(request: Request) -> dict:
    services = _services(request)
    generation, documents = await run_in_threadpool(services.documents)
    return {"generation": generation, "documents": [_document(services, d) for d in documents]}


@router.post("/v1/kb/documents")
async def upload_documents(request: Request) -> dict:
    services = _services(request)
    server = services.settings.server
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "upload files as multipart/form-data (field name 'files')")
    try:
        form = await request.form(max_files=server.max_upload_files, max_fields=server.max_upload_files + 8)
    except ApiError:
        raise
    except Exception as exc:  # python-multipart's parse errors and the form limits
        raise ApiError(400, f"cannot read the upload: {exc}") from None
    uploads = [item for _, item in form.multi_items() if isinstance(item, UploadFile)]
    if not uploads:
        await form.close()
        raise ApiError(400, "no files in the upload (send them in form field 'files')")
    names = [upload.filename or "" for upload in uploads]
    bad = next((n for n in names if _UNSAFE_NAME.search(n) or n.strip() in ("", ".", "..")), None)
    if bad is not None:
        await form.close()
        # A browser sends a bare file name; a path or control characters mean a confused or hostile client.
        raise ApiError(400, f"upload name {bad!r} is not a plain file name (no folders, '..' or control "
                            "characters); nothing was saved", param="files")
    files = [(name, await upload.read()) for name, upload in zip(names, uploads)]
    await form.close()
    embedder = await run_in_threadpool(lambda: services.embedder)
    try:
        outcome = await run_in_threadpool(ingest_uploads, files, services.settings, embedder=embedder)
    except KnowledgeBaseLockedError as exc:
        raise _locked(exc) from None
    except KnowledgeBaseError as exc:
        raise ApiError(409, str(exc), code="kb_error") from None
    results = ([{"name": n, "status": "ingested"} for n in outcome.ingested]
               + [{"name": n, "status": "unchanged"} for n in outcome.unchanged]
               + [{"name": f.name, "status": "failed", "reason": f.reason} for f in outcome.failures])
    return {"files": results, "report": _report(outcome.report)}


@router.delete("/v1/kb/documents/{doc_id}")
async def delete_document(doc_id: str, request: Request) -> dict:
    services = _services(request)
    _, documents = await run_in_threadpool(services.documents)
    doc = next((d for d in documents if document_id(d.path) == doc_id), None)
    if doc is None:
        raise ApiError(404, f"no document with id {doc_id!r} (GET /v1/kb/documents lists them)", code="not_found")
    if not _is_upload(services, doc.path):
        # The server never deletes a user's own files; a document ingested from a folder leaves with its file.
        raise ApiError(409, f"{doc.path} was not uploaded through docqa; delete or move the file, then re-scan "
                            "(POST /v1/kb/rescan)", code="not_an_upload")
    return await run_in_threadpool(_delete_upload, services, doc)


def _delete_upload(services: ServerServices, doc: DocumentRecord) -> dict:
    path = Path(doc.path)
    # Moved aside (a name the scan skips) so a failed ingest can put it back; under the writer lock (re-entrant:
    # the ingest inside takes it again) so no other ingest sees the file half-deleted.
    aside = path.with_name("." + path.name + ".deleting")
    try:
        with WriterLock(services.settings.kb_path):
            present = path.exists()
            if present:
                os.replace(path, aside)
            try:
                # The uploads folder as the root: a file missing under a scanned folder is removed (a missing root
                # itself would be kept, in case it is only unmounted).
                report = run_ingest(services.settings, [path.parent], IngestOptions(),
                                    embedder_factory=lambda: services.embedder)
            except BaseException:
                if present:
                    os.replace(aside, path)
                raise
    except KnowledgeBaseLockedError as exc:
        raise _locked(exc) from None
    aside.unlink(missing_ok=True)
    return {"deleted": {"id": document_id(doc.path), "path": doc.path}, "report": _report(report)}


@router.post("/v1/kb/rescan")
async def rescan(request: Request) -> dict:
    """Bring the base in line with its files: changed catalogued files, new or deleted files in the uploads folder
    and in the configured ``server.scan_paths``. A catalogued file that is gone from elsewhere is reported and kept
    (as ``python -m ingest`` keeps a missing path's documents)."""
    services = _services(request)
    _, documents = await run_in_threadpool(services.documents)
    roots = [p.resolve() for p in [services.settings.upload_path, *services.settings.server.scan_paths] if p.exists()]
    # Catalogued files outside the scanned folders are checked one by one (those inside are covered by the scan).
    known = [Path(d.path) for d in documents if not any(Path(d.path).resolve().is_relative_to(r) for r in roots)]
    paths = roots + known
    if not paths:
        raise ApiError(409, "nothing to scan: the base is empty and no uploads or server.scan_paths exist")
    try:
        report = await run_in_threadpool(run_ingest, services.settings, paths, IngestOptions(),
                                         lambda: services.embedder)
    except KnowledgeBaseLockedError as exc:
        raise _locked(exc) from None
    except KnowledgeBaseError as exc:
        raise ApiError(409, str(exc), code="kb_error") from None
    return {"report": _report(report)}


@router.post("/v1/kb/retrieve")
async def retrieve(body: RetrieveRequest, request: Request) -> dict:
    """The passages for a query with every stage's score: the JSON of ``python -m retrieval --json``."""
    services = _services(request)
    try:
        query = validate_question(body.query, services.settings.limits)
    except QuestionError as exc:
        raise ApiError(400, f"query rejected: {exc}", param="query") from None
    try:
        snapshot = await run_in_threadpool(services.snapshot)
    except KnowledgeBaseError as exc:
        raise ApiError(503, str(exc), "server_error", "no_knowledge_base") from None
    result = await run_in_threadpool(snapshot.pipeline.retriever.retrieve, query, body.top_k, body.rerank)
    return {**result_as_dict(result), "generation": snapshot.generation}
