"""The one exception every loader raises for a file it cannot turn into text."""

from __future__ import annotations

from pathlib import Path


class LoadError(Exception):
    """A file could not be loaded; ``str(e)`` is ``"<path>: <reason>"`` on one line."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(reason.split())  # one line, whatever a library put in its message
        super().__init__(f"{self.path}: {self.reason}")
