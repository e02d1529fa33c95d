"""The knowledge bases over HTTP: list, create, rename, delete (with the base's name as confirmation). Names are
checked by the registry (ingest/store/base_registry.py), the one place that decides what a name may hold, so a
name refused here is refused with the same line by the CLI and the page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from app.answer.knowledge_bases import list_bases
from app.config import ConfigError, base_registry
from app.server.document_routes import base_or_404, services_of
from app.server.errors import ApiError
from app.server.openai_schema import CreateBaseRequest, DeleteBaseRequest, RenameBaseRequest
from app.wiring import knowledge_store
from ingest.store.base_registry import (
    DEFAULT_BASE,
    BaseInfo,
    BaseRegistryError,
    BaseTakenError,
    InvalidBaseNameError,
)

router = APIRouter()
# The model id that asks a question of one base in /v1/chat/completions ("docqa/A+B" for several).
MODEL_PREFIX = "docqa/"


def _registry_error(exc: BaseRegistryError) -> ApiError:
    if isinstance(exc, InvalidBaseNameError):
        return ApiError(400, str(exc), code="invalid_base_name", param="name")
    if isinstance(exc, BaseTakenError):
        return ApiError(409, str(exc), code="base_exists", param="name")
    return ApiError(409, str(exc), code="base_refused")


def _base_json(base: BaseInfo) -> dict:
    return {"name": base.name, "model": MODEL_PREFIX + base.name, "created": base.created, "settings": base.settings}


@router.get("/v1/bases")
async def bases(request: Request) -> dict:
    """Every base, the default one first, with its documents and chunks, or the problem that keeps it unusable."""
    services = services_of(request)
    try:
        found = await run_in_threadpool(list_bases, services.settings, knowledge_store)
    except ConfigError as exc:
        raise ApiError(503, str(exc), "server_error", "bases_unavailable") from None
    return {"default": services.settings.kb_name,
            "bases": [{"name": b.name, "model": None if b.problem else MODEL_PREFIX + b.name,
                       "generation": b.generation, "documents": b.documents, "chunks": b.chunks,
                       "problem": b.problem} for b in found]}


@router.post("/v1/bases", status_code=201)
async def create_base(body: CreateBaseRequest, request: Request) -> dict:
    registry = base_registry(services_of(request).settings)
    try:
        base = await run_in_threadpool(registry.create, body.name, body.settings)
    except BaseRegistryError as exc:
        raise _registry_error(exc) from None
    return _base_json(base)


@router.patch("/v1/bases/{name}")
async def rename_base(name: str, body: RenameBaseRequest, request: Request) -> dict:
    services = services_of(request)
    settings = base_or_404(services, name)
    if settings.kb_name.casefold() == services.settings.kb_name.casefold() and settings.kb_name != DEFAULT_BASE:
        # The server was started on this base by name: renaming it under the running server would strand it.
        raise ApiError(409, f"knowledge base {settings.kb_name!r} is the one this server was started with; "
                            "rename it while the server is stopped", code="base_in_use")
    try:
        base = await run_in_threadpool(base_registry(services.settings).rename, settings.kb_name, body.name)
    except BaseRegistryError as exc:
        raise _registry_error(exc) from None
    services.bases.forget(settings.kb_name)
    return _base_json(base)


@router.delete("/v1/bases/{name}")
async def delete_base(name: str, request: Request, body: DeleteBaseRequest | None = None) -> dict:
    """Remove a base with its documents and uploads. The body must repeat its name: ``{"confirm": "NAME"}``
    (or ``?confirm=NAME``); refused while an ingest writes it, and for the default base and the server's own."""
    services = services_of(request)
    settings = base_or_404(services, name)
    confirm = (body.confirm if body else "") or request.query_params.get("confirm", "")
    if confirm != settings.kb_name:
        raise ApiError(400, f"deleting knowledge base {settings.kb_name!r} removes its documents and uploads; send "
                            f'{{"confirm": "{settings.kb_name}"}} to confirm', code="confirmation_required",
                       param="confirm")
    if settings.kb_name.casefold() == services.settings.kb_name.casefold():
        raise ApiError(409, f"knowledge base {settings.kb_name!r} is the one this server answers from; it cannot "
                            "be deleted while the server runs", code="base_in_use")
    try:
        await run_in_threadpool(base_registry(services.settings).delete, settings.kb_name)
    except BaseRegistryError as exc:
        raise _registry_error(exc) from None
    services.bases.forget(settings.kb_name)
    return {"deleted": settings.kb_name}
