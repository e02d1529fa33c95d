"""Finding the files to ingest under the paths a user gives, and hashing their bytes."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

# Read files in 1 MiB pieces when hashing, so a large PDF is never held in memory twice.
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """A file found under an ingest root; ``mtime``/``size`` are None when it cannot be stat'ed."""

    path: str
    mtime: float | None
    size: int | None


@dataclass
class ScanResult:
    files: list[SourceFile]
    roots: list[str]  # absolute forms of the paths given
    missing_roots: list[str]  # given paths that do not exist
    # Folders (given or found) that could not be listed, with the reason: nothing under them counts as removed.
    unreadable: dict[str, str] = field(default_factory=dict)
    # Files whose name is not valid UTF-8 (e.g. GBK names unpacked from a Windows zip): the catalog cannot store
    # such a path, so they are reported instead of ingested.
    undecodable: list[str] = field(default_factory=list)
    # Symbolic links (to files or folders) whose real path leaves the folder being ingested, with where they lead:
    # not followed unless asked, so a link to /etc/passwd does not put the password file into the base.
    outside: dict[str, str] = field(default_factory=dict)


def _source(path: str) -> SourceFile:
    try:
        info = os.stat(path)
    except OSError:
        return SourceFile(path, None, None)
    return SourceFile(path, info.st_mtime, info.st_size)


def _leads_outside(path: str, real_root: str) -> str | None:
    """Where the link ``path`` really leads when that is outside ``real_root`` (None when it stays inside)."""
    real = os.path.realpath(path)
    return None if under_roots(real, [real_root]) else real


def _walk(root: str, extensions: frozenset[str], unreadable: dict[str, str], outside: dict[str, str],
          follow_links: bool) -> Iterable[str]:
    """Supported files under ``root``, skipping hidden files and folders (editor backups, .git ...); folders that
    cannot be listed go into ``unreadable``. Links leading out of ``root`` go into ``outside`` unless
    ``follow_links``; a link to a folder inside it is not walked (its files are found where they are), nor one to a
    folder already walked (a loop)."""
    def note(exc: OSError) -> None:
        unreadable[exc.filename or root] = exc.strerror or str(exc)

    real_root = os.path.realpath(root)
    walked: set[str] = set()  # real folders already walked: a link loop or a second way in is not followed
    for dirpath, dirnames, filenames in os.walk(root, onerror=note, followlinks=follow_links):
        walked.add(os.path.realpath(dirpath))
        kept = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            folder = os.path.join(dirpath, name)
            if os.path.islink(folder):
                real = _leads_outside(folder, real_root)
                if real is None or real in walked:  # found where it really is, or already walked
                    continue
                if not follow_links:
                    outside[folder] = real
                    continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in extensions:
                continue
            path = os.path.join(dirpath, name)
            if not follow_links and os.path.islink(path) and (real := _leads_outside(path, real_root)) is not None:
                outside[path] = real
                continue
            yield path


def scan_sources(paths: Sequence[Path], extensions: frozenset[str], follow_links: bool = False) -> ScanResult:
    """Files to ingest: every supported file under each directory, and each file given explicitly (whatever
    its extension: the loader then says why it cannot be read). Inside a directory, symbolic links whose real path
    leaves it are reported in ``outside`` instead, unless ``follow_links``; a path given explicitly is taken as
    the user named it."""
    roots = [os.path.abspath(p) for p in paths]
    seen: dict[str, SourceFile] = {}
    missing: list[str] = []
    undecodable: list[str] = []
    unreadable: dict[str, str] = {}
    outside: dict[str, str] = {}
    for root in roots:
        if os.path.isdir(root):
            found = list(_walk(root, extensions, unreadable, outside, follow_links))
        elif os.path.lexists(root):
            found = [root]
        else:
            missing.append(root)
            continue
        for path in found:
            if not _is_utf8(path):
                undecodable.append(path)
            elif path not in seen:
                seen[path] = _source(path)
    return ScanResult(files=sorted(seen.values(), key=lambda f: f.path), roots=roots, missing_roots=missing,
                      unreadable=unreadable, undecodable=sorted(set(undecodable)), outside=outside)


def _is_utf8(path: str) -> bool:
    """False for a name Python decoded with surrogate escapes (bytes that are not UTF-8)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_path(path: str) -> str:
    """``path`` with bytes that are not UTF-8 shown as ``\\xNN``, safe to print, log or store as text."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def under_roots(path: str, roots: Sequence[str]) -> bool:
    """True when ``path`` is one of ``roots`` or inside one of them."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def file_sha256(path: str) -> str | None:
    """sha256 of the file's bytes (the same content hash the loader records), None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever, and a device
        # (a link to /dev/zero) never ends: only regular files are hashed; the loader reports the rest.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            while block := fh.read(_HASH_BLOCK):
                digest.update(block)
        except OSError:
            return None
    return digest.hexdigest()
