"""The single-writer lock of a knowledge base: ``filelock`` on kb_dir/.lock, never blocking.

The operating system drops the lock when the holder dies (even by SIGKILL), so a crashed ingest never leaves a
stale lock. It is re-entrant within one thread (an upload holds it while the ingest inside takes it again) and
exclusive across threads and processes. Readers do not take it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from ingest.store.kb_layout import LOCK_FILE

# Beside the lock: who holds it, for the message a second writer gets.
_OWNER_SUFFIX = ".owner"


class KnowledgeBaseLockedError(Exception):
    """Another process (or another upload in this one) is writing this knowledge base."""


class WriterLock:
    """``with WriterLock(kb_dir):`` holds the lock or raises KnowledgeBaseLockedError at once."""

    def __init__(self, kb_dir: Path):
        self.kb_dir = Path(kb_dir)
        self._path = self.kb_dir / LOCK_FILE
        self._owner = self._path.with_name(LOCK_FILE + _OWNER_SUFFIX)
        self._lock = FileLock(self._path, timeout=0, is_singleton=True)

    def acquire(self) -> None:
        self.kb_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            try:
                holder = self._owner.read_text(encoding="ascii").strip() or "unknown"
            except (OSError, UnicodeDecodeError):
                holder = "unknown"
            raise KnowledgeBaseLockedError(
                f"another ingest is running (pid {holder}) on {self.kb_dir}; wait for it to finish") from None
        if self._lock.lock_counter == 1:
            self._owner.write_text(str(os.getpid()), encoding="ascii")

    def release(self) -> None:
        if self._lock.is_locked:
            if self._lock.lock_counter == 1:
                self._owner.unlink(missing_ok=True)
            self._lock.release()

    def __enter__(self) -> "WriterLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
