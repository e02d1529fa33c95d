"""Who may call the server: nobody needs a key on a loopback address; any other address needs one (the server
refuses to start without it), and once a key is configured every request must carry it as a bearer token."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import Request

from app.server.settings import ServerSettings


class AuthError(Exception):
    """The request carries no key or a wrong one (the message never contains the key)."""


class StartupRefused(Exception):
    """The server must not start as configured (the message says why and what to do)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_startup(settings: ServerSettings) -> None:
    if is_loopback(settings.host):
        return
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        raise StartupRefused(f"refusing to listen on {settings.host}: any address other than 127.0.0.1/::1 needs an "
                             "API key (set DOCQA_SERVER__API_KEY or [server] api_key)")


class ApiKeyCheck:
    """A FastAPI dependency: compares the bearer token with the configured key in constant time."""

    def __init__(self, settings: ServerSettings) -> None:
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        self._key = key.encode("utf-8") if key.strip() else None

    @property
    def required(self) -> bool:
        return self._key is not None

    def accepts(self, request: Request) -> bool:
        """Whether the request may see more than an open endpoint shows (no key configured, or the right one)."""
        try:
            self(request)
        except AuthError:
            return False
        return True

    def __call__(self, request: Request) -> None:
        if self._key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("missing API key: send the header 'Authorization: Bearer <key>'")
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._key):
            raise AuthError("wrong API key")
