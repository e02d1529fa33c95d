"""The FastAPI application: routes, the API-key check, body limits, JSON errors and the generation queue."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from app.http_guard.loopback_guard import GuardPolicy, install_loopback_guard
from app.server import base_routes, chat_routes, document_routes, kb_routes, source_routes
from app.server.auth import ApiKeyCheck
from app.server.body_limit import BodyLimitMiddleware
from app.server.errors import install_error_handlers
from app.server.generation_queue import GenerationQueue
from app.server.services import ServerServices

_MB = 1024 * 1024


def create_app(services: ServerServices, warm_up: bool = True) -> FastAPI:
    server = services.settings.server
    queue = GenerationQueue(server.queue_size, server.retry_after_s)
    auth = ApiKeyCheck(server)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm_up:
            services.warm_up()  # models load before the first request is accepted
        yield
        queue.shutdown()

    app = FastAPI(title="docqa", summary="Grounded answers from your own documents, OpenAI-compatible",
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services, app.state.queue, app.state.auth = services, queue, auth
    app.state.uploads_in_flight = 0  # uploads being received now (server.max_concurrent_uploads bounds it)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_json_bytes=int(server.max_body_mb * _MB),
                       max_upload_bytes=int(server.max_upload_request_mb * _MB))
    # Outermost: a request a web page sent on its own (DNS rebinding, cross-site) is refused before anything runs.
    install_loopback_guard(app, GuardPolicy.of([*server.allowed_hosts, server.host], server.allowed_origins))
    app.include_router(kb_routes.open_router)
    app.include_router(kb_routes.router, dependencies=[Depends(auth)])
    app.include_router(chat_routes.router, dependencies=[Depends(auth)])
    app.include_router(base_routes.router, dependencies=[Depends(auth)])
    app.include_router(document_routes.router, dependencies=[Depends(auth)])
    app.include_router(source_routes.router, dependencies=[Depends(auth)])
    return app
