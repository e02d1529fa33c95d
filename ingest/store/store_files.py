"""Checking the files of a knowledge base and naming what is wrong with them in one line.

A committed generation records a checksum of each of its files in its manifest; a reader or writer verifies a
file before using it, so damage anywhere in it (not only in the header a loader looks at) is found when the base
is opened, never half-way through a command. Disk-full and permission errors get their own messages: they are
not damage, and the fix is not a rebuild.
"""

from __future__ import annotations

import errno
import sqlite3
import zlib
from pathlib import Path

# Files are read in 1 MiB pieces for their checksum.
_BLOCK = 1 << 20
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_NO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}


class StoreFileError(Exception):
    """A file of the base is missing, unreadable or does not match its checksum; ``kind`` says which."""

    def __init__(self, path: Path, kind: str, message: str):
        super().__init__(message)
        self.path = path
        self.kind = kind  # "missing" | "permission" | "damaged"


def file_checksum(path: Path) -> str:
    """``crc32:<hex>:<size>`` of the file's bytes (fast; it guards against accidental damage, not attackers)."""
    crc, size = 0, 0
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return f"crc32:{crc:08x}:{size}"


def tree_checksums(root: Path) -> dict[str, str]:
    """Checksums of every file under ``root``, keyed by path relative to it (``/`` separated)."""
    return {p.relative_to(root).as_posix(): file_checksum(p) for p in sorted(root.rglob("*")) if p.is_file()}


def verify_file(path: Path, expected: str | None) -> None:
    """Raise StoreFileError unless ``path`` can be read and (when a checksum was recorded) matches it."""
    try:
        actual = file_checksum(path)
    except FileNotFoundError as exc:
        raise StoreFileError(path, "missing", f"{path}: missing") from exc
    except IsADirectoryError as exc:
        raise StoreFileError(path, "damaged", f"{path}: a folder where a file belongs") from exc
    except OSError as exc:
        if exc.errno in _NO_PERMISSION:
            raise StoreFileError(path, "permission", permission_message(path, "read")) from exc
        raise StoreFileError(path, "damaged", f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if expected is not None and actual != expected:
        raise StoreFileError(path, "damaged", f"{path}: damaged (its bytes no longer match the checksum recorded "
                                              "when it was written)")


def verify_files(root: Path, checksums: dict[str, str], names: list[str] | None = None) -> None:
    """``verify_file`` for the recorded files under ``root`` (only ``names``, or the files below those folders)."""
    for relative, expected in checksums.items():
        if names is None or any(relative == n or relative.startswith(n.rstrip("/") + "/") for n in names):
            verify_file(root / relative, expected)


def permission_message(path: Path | str, action: str) -> str:
    return (f"permission denied: cannot {action} {path}; give the user running docqa {action} access to it "
            "(e.g. `chmod -R u+rwX` on the knowledge-base folder, or run as its owner); nothing was changed")


def disk_full_message(where: Path | str) -> str:
    return (f"disk full: no space left to write the knowledge base at {where}; free some space and run the "
            "command again (the knowledge base is unchanged)")


def describe_os_problem(exc: BaseException, kb_dir: Path) -> str | None:
    """One line for a disk-full or permission error anywhere in ``exc``'s chain (OSError, SQLite, FAISS), or None
    when it is neither."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _DISK_FULL:
            return disk_full_message(kb_dir)
        if isinstance(current, OSError) and current.errno in _NO_PERMISSION:
            return permission_message(current.filename or kb_dir, "write" if current.errno == errno.EROFS
                                      else "read or write")
        text = str(current)
        if isinstance(current, sqlite3.Error) or isinstance(current, RuntimeError):
            lowered = text.lower()
            if "disk is full" in lowered or "no space left" in lowered:
                return disk_full_message(kb_dir)
            if "readonly database" in lowered or "permission denied" in lowered:
                return permission_message(kb_dir, "read or write")
        current = current.__cause__ or current.__context__
    return None
