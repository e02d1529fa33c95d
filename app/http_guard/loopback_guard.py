"""An ASGI middleware that keeps web pages out of a local server (DNS rebinding, cross-site requests).

A server on 127.0.0.1 needs no key, so the browser is the way in: any page the user opens may send requests to
it. Three rules close that, in the order a request meets them:

1. **Host.** Only loopback names (``localhost``, ``*.localhost``), IP addresses and the configured names are
   served. A DNS-rebinding page (``evil.example`` re-pointed at 127.0.0.1) reaches the port, but its requests carry
   ``Host: evil.example:PORT`` and are refused — what Ollama does for the same reason.
2. **Origin.** A request a browser marks as coming from another site (``Origin`` of a page that is not on a
   loopback name and not configured, ``Origin: null``, or ``Sec-Fetch-Site: cross-site`` without an allowed
   Origin) is refused before anything reads or changes state, as the MCP specification asks of its servers.
3. **No simple writes.** A POST a browser would send cross-site without asking first (a CORS "simple" request:
   a form's content type or none, no custom header) is refused, so an upload or a re-scan always needs a JSON
   body, an ``Authorization`` header or ``X-Requested-With`` — which a foreign page cannot add without a
   preflight that rule 2 turns down. This also covers browsers that send no Origin.

Allowed browser origins also get CORS headers (Starlette's CORSMiddleware), so a front end the user runs on
localhost can call the server. Non-browser clients (curl, the openai client, LangChain) send no Origin and pass.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

# Browser origins of pages served from this machine (any port): what a local front end runs on.
LOOPBACK_ORIGIN = r"https?://(localhost|[a-z0-9-]+\.localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?"
_LOOPBACK_ORIGIN = re.compile(LOOPBACK_ORIGIN, re.I)
# Content types a page may POST cross-site without a preflight (the Fetch standard's CORS-safelisted ones).
_SIMPLE_CONTENT_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
# Headers a page cannot add to a cross-site request without a preflight: their presence proves it was asked.
_PROOF_HEADERS = (b"authorization", b"x-requested-with")
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ANY = "*"


@dataclass(frozen=True)
class GuardPolicy:
    """Who may talk to the server besides loopback clients: extra ``Host`` names (e.g. ``docqa.lan``,
    ``host.docker.internal``) and extra browser origins (``scheme://host[:port]``, or ``null``); ``*`` allows any."""

    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def of(cls, hosts: Iterable[str] = (), origins: Iterable[str] = ()) -> "GuardPolicy":
        return cls(tuple(host_name(h) for h in hosts if h.strip()),
                   tuple(o.strip().rstrip("/").lower() for o in origins if o.strip()))


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8000`` → ``::1``, ``Example.COM:80`` → ``example.com``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host_header: str | None, policy: GuardPolicy) -> bool:
    """True for no Host (HTTP/1.0, not a browser), loopback names, IP addresses (a page cannot be re-pointed at an
    address: its origin would be the server itself) and the configured names."""
    if not host_header:
        return True
    name = host_name(host_header).rstrip(".")
    if name == "localhost" or name.endswith(".localhost") or ANY in policy.allowed_hosts:
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in policy.allowed_hosts


def origin_allowed(origin: str, policy: GuardPolicy) -> bool:
    origin = origin.strip().rstrip("/").lower()
    return (bool(_LOOPBACK_ORIGIN.fullmatch(origin)) or origin in policy.allowed_origins
            or ANY in policy.allowed_origins)


def is_simple_write(method: str, headers: dict[bytes, bytes]) -> bool:
    """A POST a browser sends cross-site without a preflight: a safelisted content type (or none) and no header
    that needs permission. Other write methods (PUT, PATCH, DELETE) always need a preflight."""
    if method != "POST":
        return False
    if any(name in headers for name in _PROOF_HEADERS):
        return False
    content_type = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
    return content_type in _SIMPLE_CONTENT_TYPES or not content_type


def refusal(scope: Scope, policy: GuardPolicy) -> Refusal | None:
    """Why the request must not reach the server (None when it may)."""
    headers = {name.lower(): value for name, value in scope.get("headers") or []}
    host = headers.get(b"host", b"").decode("latin-1")
    if not host_allowed(host, policy):
        return Refusal(403, "host_not_allowed",
                       f"Host {host!r} is not a name this server answers to (a web page re-pointing its own name "
                       "at this machine looks like this); use localhost or 127.0.0.1, or add the name to "
                       "allowed_hosts")
    origin = headers.get(b"origin")
    if origin is not None:
        shown = origin.decode("latin-1")
        if not origin_allowed(shown, policy):
            return Refusal(403, "origin_not_allowed",
                           f"request from the web page origin {shown!r} refused: pages on other sites may not use "
                           "this server (add your own front end's origin to allowed_origins)")
    elif headers.get(b"sec-fetch-site", b"").lower() == b"cross-site":
        return Refusal(403, "origin_not_allowed", "request from a page on another site refused")
    method = scope.get("method", "GET")
    if method in _WRITE_METHODS and is_simple_write(method, headers):
        return Refusal(403, "simple_request_refused",
                       "a web page could send this request without asking, so it is refused: send it as "
                       "application/json, or add the header 'X-Requested-With: docqa' (or your API key as "
                       "'Authorization: Bearer ...')")
    return None


class LoopbackGuard:
    """The ASGI middleware applying ``refusal``: a refused HTTP request gets a JSON error in the OpenAI shape
    (``{"error": {"message", "type", "code"}}``), a refused WebSocket is closed before it opens."""

    def __init__(self, app: ASGIApp, policy: GuardPolicy) -> None:
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = refusal(scope, self.policy)
        if refused is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refused.code})
        else:
            body = json.dumps({"error": {"message": refused.message, "type": "permission_error", "param": None,
                                         "code": refused.code}}, ensure_ascii=False).encode("utf-8")
            await send({"type": "http.response.start", "status": refused.status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


def install_loopback_guard(app: ASGIApp, policy: GuardPolicy) -> None:
    """Put the guard in front of a Starlette/FastAPI ``app`` (call after its other middleware, so it runs first),
    with CORS headers for the browser origins it lets through."""
    wildcard = ANY in policy.allowed_origins
    app.add_middleware(CORSMiddleware, allow_origins=[ANY] if wildcard else list(policy.allowed_origins),
                       allow_origin_regex=None if wildcard else LOOPBACK_ORIGIN, allow_methods=["*"],
                       allow_headers=["*"], max_age=600)
    app.add_middleware(LoopbackGuard, policy=policy)
