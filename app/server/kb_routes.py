"""The server's own knowledge base: health, status, documents (list, upload, delete: the handlers of
app/server/document_routes.py, which serves every base under ``/v1/bases/{name}/...``), re-scan and retrieval with
every score.

Uploads go through the same sanitised, size-limited, incremental ingest as the chat page
(``app.uploads.upload_ingest.ingest_uploads``). Writes run in worker threads and hold the base's writer lock;
questions go on reading the last committed generation meanwhile."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.server.chat_routes import snapshot_for
from app.server.document_routes import (
    base_or_404,
    delete_from,
    list_documents_json,
    locked,
    report_json,
    upload_into,
)
from app.server.errors import ApiError
from app.server.openai_schema import RescanRequest, RetrieveRequest
from app.server.services import ServerServices
from app.uploads.saving import interrupted_uploads
from app.uploads.upload_ingest import ingest_uploads, recover_interrupted_uploads
from app.wiring import kb_notices, run_ingest
from ingest.pipeline.ingest_pipeline import IngestOptions
from ingest.records import DocumentRecord
from ingest.store.kb_lock import KnowledgeBaseLockedError, WriterLock
from ingest.store.knowledge_base import KnowledgeBaseError
from retrieval.question_check import QuestionError, validate_question
from retrieval.results import result_as_dict

router = APIRouter()
# Open to every caller (liveness checks carry no key); it tells nothing about the base.
open_router = APIRouter()


def _services(request: Request) -> ServerServices:
    return request.app.state.services


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
    return await list_documents_json(_services(request).settings)


@router.post("/v1/kb/documents")
async def upload_documents(request: Request) -> dict:
    return await upload_into(request, _services(request).settings)


@router.delete("/v1/kb/documents/{doc_id}")
async def delete_document(doc_id: str, request: Request) -> dict:
    """The server's own base's document (``DELETE /v1/bases/{name}/documents/{id}`` for any base): an upload
    leaves with its file; a file from the user's folder stays there and is left out of later re-scans."""
    result = await delete_from(request, _services(request).settings, [doc_id])
    return {**result, "deleted": result["deleted"][0]}


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
        raise locked(exc) from None
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
    return {"report": report_json(report), "notices": notices, "interrupted": asked}


@router.post("/v1/kb/retrieve")
async def retrieve(body: RetrieveRequest, request: Request) -> dict:
    """The passages for a query with every stage's score: the JSON of ``python -m retrieval --json``; over the
    bases ``body.bases`` names when given (several: fused, each passage naming its base)."""
    services = _services(request)
    try:
        query = validate_question(body.query, services.settings.limits)
    except QuestionError as exc:
        raise ApiError(400, f"query rejected: {exc}", param="query") from None
    for name in body.bases or []:
        base_or_404(services, name)
    snapshot = await snapshot_for(services, body.bases)
    retriever = snapshot.pipeline.retriever
    result = await run_in_threadpool(retriever.retrieve, query, body.top_k, body.rerank)
    return {**result_as_dict(result), "generation": snapshot.generation, "notices": kb_notices(retriever)}


@router.post("/v1/bases/{name}/retrieve")
async def base_retrieve(name: str, body: RetrieveRequest, request: Request) -> dict:
    """``/v1/kb/retrieve`` over the base ``name`` (the retrieval testing of one base)."""
    return await retrieve(body.model_copy(update={"bases": [name]}), request)
