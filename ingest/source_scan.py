"""Finding the files to ingest under the paths a user gives, and hashing their bytes."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
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


def _source(path: str) -> SourceFile:
    try:
        info = os.stat(path)
    except OSError:
        return SourceFile(path, None, None)
    return SourceFile(path, info.st_mtime, info.st_size)


def _walk(root: str, extensions: frozenset[str]) -> Iterable[str]:
    """Supported files under ``root``, skipping hidden files and folders (editor backups, .git ...)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                yield os.path.join(dirpath, name)


def scan_sources(paths: Sequence[Path], extensions: frozenset[str]) -> ScanResult:
    """Files to ingest: every supported file under each directory, and each file given explicitly (whatever
    its extension: the loader then says why it cannot be read)."""
    roots = [os.path.abspath(p) for p in paths]
    seen: dict[str, SourceFile] = {}
    missing: list[str] = []
    for root in roots:
        if os.path.isdir(root):
            for path in _walk(root, extensions):
                seen.setdefault(path, _source(path))
        elif os.path.lexists(root):
            seen.setdefault(root, _source(root))
        else:
            missing.append(root)
    return ScanResult(files=sorted(seen.values(), key=lambda f: f.path), roots=roots, missing_roots=missing)


def under_roots(path: str, roots: Sequence[str]) -> bool:
    """True when ``path`` is one of ``roots`` or inside one of them."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def file_sha256(path: str) -> str | None:
    """sha256 of the file's bytes (the same content hash the loader records), None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_HASH_BLOCK):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()
