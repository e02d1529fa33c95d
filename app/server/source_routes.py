"""``GET /v1/kb/documents/{id}/pages/{n}.png?chunk=ID&doc=HASH&quote=…``: a citation's page as the web page shows
it, a PNG drawn on the server with the cited lines highlighted (app/sources/), for any front end. The document id
is the one ``/v1/kb/documents`` lists; ``chunk`` and ``doc`` (the content hash, or its first 16 characters) are a
passage's ``chunk.chunk_id`` and ``chunk.doc_id`` as ``POST /v1/kb/retrieve`` gives them; ``base`` names another
base than the server's own (a passage's ``base``). A citation whose place is text (a slide, a row, a passage), or
whose original cannot be shown, gets a JSON error with the one line the page would show."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.answer.knowledge_bases import document_id
from app.config import ConfigError, settings_for_base
from app.server.errors import ApiError
from app.sources.cited_chunk import CitationGone, cited_chunk
from app.sources.cited_place import cited_place
from app.wiring import knowledge_store

router = APIRouter()


@router.get("/v1/kb/documents/{doc_id}/pages/{page}.png")
async def cited_page(request: Request, doc_id: str, page: int, chunk: int, doc: str, quote: str = "",
                     base: str = "") -> Response:
    services = request.app.state.services
    try:
        settings = settings_for_base(services.settings, base) if base else services.settings
        store = knowledge_store(settings) if base else services.store
        found = await run_in_threadpool(cited_chunk, store, chunk, doc)
    except (ConfigError, CitationGone) as exc:
        raise ApiError(404, str(exc), code="citation_gone") from None
    if document_id(found.source) != doc_id or found.page != page:
        raise ApiError(404, f"chunk {chunk} is not on page {page} of document {doc_id}", code="citation_gone")
    place = await run_in_threadpool(cited_place, found, quote, settings.ocr, settings.limits)
    if place.kind != "page":
        raise ApiError(409, place.notice or f"{found.source}: this citation's place is text, not a page image",
                       code="no_page_image")
    # The page shown may be the next one when a merged passage cites a sentence printed there.
    return Response(place.png, media_type="image/png",
                    headers={"X-Docqa-Page": str(place.page), "X-Docqa-Located": str(place.located).lower()})
