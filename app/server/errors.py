"""Every error a client gets is JSON in the OpenAI error shape with a clear message; never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.server.auth import AuthError
from app.server.generation_queue import QueueFullError
from app.server.openai_schema import error_body
from ingest.store.knowledge_base import KnowledgeBaseError

log = logging.getLogger("docqa.server")


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.message, self.type, self.code, self.param), status_code=self.status,
                            headers=self.headers)


def _describe(exc: RequestValidationError) -> tuple[str, str | None]:
    problems, first = [], None
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        first = first or where
        if error.get("type") == "json_invalid":
            problems.append(f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})")
        elif error.get("type") == "missing":
            problems.append(f"{where}: missing")
        else:
            problems.append(f"{where}: {str(error.get('msg', 'invalid')).rstrip('.')}")
    return "; ".join(problems) or "invalid request", first


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "authentication_error", "invalid_api_key"), status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(QueueFullError)
    async def _busy(request: Request, exc: QueueFullError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "rate_limit_error", "queue_full"), status_code=429,
                            headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(KnowledgeBaseError)
    async def _kb(request: Request, exc: KnowledgeBaseError) -> JSONResponse:
        # A damaged base, or a Milvus store that cannot be reached: the same one line the CLI prints.
        return JSONResponse(error_body(str(exc), "server_error", "kb_unavailable"), status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _describe(exc)
        return JSONResponse(error_body(message, "invalid_request_error", "invalid_request", param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return JSONResponse(error_body(message, "invalid_request_error"), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log only; the client learns that it failed, not how.
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return JSONResponse(error_body(f"internal error ({type(exc).__name__}); see the server log", "server_error"),
                            status_code=500)
