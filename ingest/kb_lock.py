"""The single-writer lock of a knowledge base: ``fcntl.flock`` on kb_dir/.lock, never blocking.

The kernel drops the lock when the holder dies (even by SIGKILL), so a crashed ingest never leaves a stale lock.
Readers do not take it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ingest.kb_layout import LOCK_FILE


class KnowledgeBaseLockedError(Exception):
    """Another process is writing this knowledge base."""


class WriterLock:
    """``with WriterLock(kb_dir):`` holds the lock or raises KnowledgeBaseLockedError at once."""

    def __init__(self, kb_dir: Path):
        self.kb_dir = Path(kb_dir)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.kb_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.kb_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise KnowledgeBaseLockedError(
                f"another ingest is running (pid {holder}) on {self.kb_dir}; wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "WriterLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
