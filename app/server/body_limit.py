"""Request bodies are held to a size before anything parses them: by Content-Length when the client sends one,
else by counting the bytes as they arrive (chunked uploads)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.server.openai_schema import error_body

UPLOAD_PREFIX = "/v1/kb/documents"


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app, self.max_json, self.max_upload = app, max_json_bytes, max_upload_bytes

    def _limit(self, scope: Scope) -> int:
        upload = scope.get("method") == "POST" and scope.get("path", "").rstrip("/") == UPLOAD_PREFIX
        return self.max_upload if upload else self.max_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _reply(send, 400, "Content-Length is not a number")
                return
            if declared > limit:
                await _reply(send, 413, _too_large(limit))
                return
        received = 0
        over = False  # the body passed the limit: whatever the app answers, the client gets 413
        replaced = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if over:
                if not replaced:
                    replaced = True
                    await _reply(send, 413, _too_large(limit))
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        if over and not replaced:
            await _reply(send, 413, _too_large(limit))


def _too_large(limit: int) -> str:
    return (f"request body is over the limit of {limit / 2**20:g} MB "
            "(server.max_body_mb; uploads: server.max_upload_request_mb)")


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps(error_body(message, "invalid_request_error", "request_too_large" if status == 413 else None),
                      ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
