"""Who may call the server: nobody needs a key on a loopback address; any other address needs one (the server
refuses to start without it), and once a key is configured every request must carry it as a bearer token."""

from __future__ import annotations

from fastapi import Request

from app.http_guard.api_key import StartupRefused, configured_key, is_loopback, key_problem
from app.http_guard.api_key import check_startup as _check_startup
from app.server.settings import ServerSettings

__all__ = ["ApiKeyCheck", "AuthError", "StartupRefused", "check_startup", "is_loopback"]


class AuthError(Exception):
    """The request carries no key or a wrong one (the message never contains the key)."""


def check_startup(settings: ServerSettings) -> None:
    _check_startup(settings.host, settings.api_key, "DOCQA_SERVER__API_KEY or [server] api_key")


class ApiKeyCheck:
    """A FastAPI dependency: compares the bearer token with the configured key in constant time."""

    def __init__(self, settings: ServerSettings) -> None:
        self._key = configured_key(settings.api_key)

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
        problem = key_problem(request.headers.get("authorization", ""), self._key)
        if problem is not None:
            raise AuthError(problem)
