"""Knowledge-base endpoints: status, documents (list, upload, delete), re-scan and retrieval with every score.

Uploads go through the same sanitised, size-limited, incremental ingest as the chat page
(``app.uploads.upload_ingest.ingest_uploads``). Writes run in worker threads and hold the base's writer lock;
questions go on reading the last committed generation meanwhile."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.server.errors import ApiError
from app.server.openai_schema import RescanRequest, RetrieveRequest
from app.server.services import ServerServices, document_id
from app.server.upload_receiver import UploadRefused, receive_uploads
from app.uploads.saving import discard, interrupted_uploads
from app.uploads.upload_ingest import ingest_uploads, recover_interrupted_uploads
from app.wiring import run_ingest
from ingest.pipeline.ingest_pipeline import IngestOptions
from ingest.pipeline.ingest_report import IngestReport
from ingest.records import DocumentRecord
from ingest.store.kb_lock import KnowledgeBaseLockedError, WriterLock
from ingest.store.knowledge_base import KnowledgeBaseError
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
async def health(request: Request) -> dict:
    """Liveness, and whether questions can be answered: a damaged base does not stop the server, it makes it
    "degraded" with the reason (shown to callers the key check accepts: it names paths)."""
    problem = await run_in_threadpool(_services(request).problem)
    if not problem:
        return {"status": "ok"}
    shown = problem if request.app.state.auth.accepts(request) else "the knowledge base cannot be used"
    return {"status": "degraded", "problem": shown}


async def _documents(services: ServerServices) -> tuple[str | None, list[DocumentRecord]]:
    """The live generation and its documents, or a 503 JSON error saying why the base cannot be read."""
    try:
        return await run_in_threadpool(services.documents)
    except KnowledgeBaseError as exc:
        raise ApiError(503, str(exc), "server_error", "kb_unavailable") from None


@router.get("/v1/kb/status")
async def status(request: Request) -> dict:
    services = _services(request)
    generation, documents = await _documents(services)
    try:
        info = await run_in_threadpool(services.live_info) if generation is not None else None
    except (KnowledgeBaseError, OSError):
        info = None
    queue = request.app.state.queue.stats()
    return {"kb_name": services.kb_name, "generation": generation, "documents": len(documents),
            "chunks": info.n_chunks if info else 0, "embedder": info.embedder if info else None,
            "store": services.store.backend,
            "llm": services.settings.generation.model, "models": ["docqa", f"docqa:{services.kb_name}"],
            "queue": vars(queue), "api_key_required": request.app.state.auth.required}


@router.get("/v1/kb/documents")
async def list_documents(request: Request) -> dict:
    services = _services(request)
    generation, documents = await _documents(services)
    return {"generation": generation, "documents": [_document(services, d) for d in documents]}


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
    server = _services(request).settings.server
    if state.uploads_in_flight >= server.max_concurrent_uploads:
        raise ApiError(429, f"{server.max_concurrent_uploads} uploads are already being received "
                            f"(server.max_concurrent_uploads); retry in {server.retry_after_s} s",
                       "rate_limit_error", "too_many_uploads", headers={"Retry-After": str(server.retry_after_s)})
    state.uploads_in_flight += 1
    try:
        yield
    finally:
        state.uploads_in_flight -= 1


@router.post("/v1/kb/documents")
async def upload_documents(request: Request) -> dict:
    services = _services(request)
    settings = services.settings
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "upload files as multipart/form-data (field name 'files')")
    async with _upload_slot(request):
        try:
            received = await receive_uploads(content_type, request.stream(), settings.upload_path, settings.limits,
                                             settings.server.max_upload_files, _refused_name)
        except UploadRefused as exc:
            raise ApiError(400, str(exc), param="files") from None
        try:
            if not received.staged and not received.failures:
                raise ApiError(400, "no files in the upload (send them in form field 'files')")
            embedder = await run_in_threadpool(lambda: services.embedder)
            outcome = await run_in_threadpool(ingest_uploads, received.staged, settings, embedder=embedder)
        except KnowledgeBaseLockedError as exc:
            raise _locked(exc) from None
        except KnowledgeBaseError as exc:
            raise ApiError(409, str(exc), code="kb_error") from None
        finally:
            discard(received.staged)  # what the ingest did not put under a name
    failures = received.failures + outcome.failures
    results = ([{"name": n, "status": "ingested"} for n in outcome.ingested]
               + [{"name": n, "status": "unchanged"} for n in outcome.unchanged]
               + [{"name": f.name, "status": "failed", "reason": f.reason} for f in failures])
    return {"files": results, "report": _report(outcome.report), "notices": outcome.notices}


@router.delete("/v1/kb/documents/{doc_id}")
async def delete_document(doc_id: str, request: Request) -> dict:
    services = _services(request)
    _, documents = await _documents(services)
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
            recover_interrupted_uploads(services.settings)  # an unconfirmed upload must not come in with this run
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
async def rescan(request: Request, body: RescanRequest | None = None) -> dict:
    """Bring the base in line with its files: changed catalogued files, new or deleted files in the uploads folder
    and in the configured ``server.scan_paths``. A catalogued file that is gone from elsewhere is reported and kept
    (as ``python -m ingest`` keeps a missing path's documents). Uploads a killed server never confirmed are set
    aside first, and ingested only with ``include_interrupted``; links out of the folders only with
    ``follow_links``."""
    services = _services(request)
    body = body or RescanRequest()
    _, documents = await _documents(services)
    roots = [p.resolve() for p in [services.settings.upload_path, *services.settings.server.scan_paths] if p.exists()]
    # Catalogued files outside the scanned folders are checked one by one (those inside are covered by the scan).
    known = [Path(d.path) for d in documents if not any(Path(d.path).resolve().is_relative_to(r) for r in roots)]
    paths = roots + known
    if not paths:
        raise ApiError(409, "nothing to scan: the base is empty and no uploads or server.scan_paths exist")
    try:
        return await run_in_threadpool(_rescan_locked, services, paths, body)
    except KnowledgeBaseLockedError as exc:
        raise _locked(exc) from None
    except KnowledgeBaseError as exc:
        raise ApiError(409, str(exc), code="kb_error") from None


def _rescan_locked(services: ServerServices, paths: list[Path], body: RescanRequest) -> dict:
    settings = services.settings
    with WriterLock(settings.kb_path):  # re-entrant: the ingests inside take it again
        notices = recover_interrupted_uploads(settings)
        asked: list[dict] = []
        if body.include_interrupted and (waiting := interrupted_uploads(settings.upload_path)):
            outcome = ingest_uploads(waiting, settings, embedder=services.embedder)
            notices += outcome.notices
            asked = ([{"name": n, "status": "ingested"} for n in outcome.ingested + outcome.unchanged]
                     + [{"name": f.name, "status": "failed", "reason": f.reason} for f in outcome.failures])
        report = run_ingest(settings, paths, IngestOptions(follow_links=body.follow_links),
                            lambda: services.embedder)
    return {"report": _report(report), "notices": notices, "interrupted": asked}


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
