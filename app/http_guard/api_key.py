"""The API-key rule every HTTP server docqa starts follows (the OpenAI-compatible server, the MCP server): nobody
needs a key on a loopback address; any other address needs one (the server refuses to start without it), and once
a key is configured every request must carry it as a bearer token, compared in constant time."""

from __future__ import annotations

import hmac
import ipaddress
import json

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send


class StartupRefused(Exception):
    """The server must not start as configured (the message says why and what to do)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def configured_key(api_key: SecretStr | None) -> bytes | None:
    """The key as bytes, or None when none is configured (an empty or blank one counts as none)."""
    key = api_key.get_secret_value() if api_key else ""
    return key.encode("utf-8") if key.strip() else None


def check_startup(host: str, api_key: SecretStr | None, key_setting: str) -> None:
    """StartupRefused when ``host`` is not a loopback address and no key is configured (``key_setting`` names
    where to set one, e.g. "DOCQA_SERVER__API_KEY or [server] api_key")."""
    if not is_loopback(host) and configured_key(api_key) is None:
        raise StartupRefused(f"refusing to listen on {host}: any address other than 127.0.0.1/::1 needs an API key "
                             f"(set {key_setting})")


def key_problem(authorization: str, key: bytes) -> str | None:
    """Why an ``Authorization`` header value does not carry ``key`` (None when it does); never shows the key."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "missing API key: send the header 'Authorization: Bearer <key>'"
    if not hmac.compare_digest(token.strip().encode("utf-8"), key):
        return "wrong API key"
    return None


class BearerKeyGuard:
    """ASGI middleware for servers that are not FastAPI apps (the MCP server): with a key configured, an HTTP
    request without it is answered 401 with a one-line JSON error before it reaches the app."""

    def __init__(self, app: ASGIApp, api_key: SecretStr | None) -> None:
        self.app, self._key = app, configured_key(api_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._key is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers") or []}
        problem = key_problem(headers.get(b"authorization", b"").decode("latin-1"), self._key)
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": {"message": problem, "type": "authentication_error", "code": "invalid_api_key"}})
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body.encode("utf-8")})
