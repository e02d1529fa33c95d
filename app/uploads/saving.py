"""Saving files uploaded through the web page: sanitised names, size limit, only inside the upload folder.

Each upload is checked on its own, so one bad file is reported by name without losing the others. A file that
replaces an earlier upload of the same name keeps the earlier version aside until the ingest has read the new one;
if the new one fails, the earlier file is put back, so the folder always matches what the knowledge base holds.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from app.config import LimitSettings

_MB = 1024 * 1024
# Longest file name most file systems accept, in bytes of UTF-8.
_MAX_NAME_BYTES = 255
# Characters that are unsafe or invalid in file names on some system (Windows reserved set included).
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_SPACES = re.compile(r"\s+")
_BACKUP_SUFFIX = ".previous"


class UploadError(ValueError):
    """An upload cannot be accepted; ``str(e)`` names the file and the problem."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass
class UploadFailure:
    name: str  # the name as uploaded
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


@dataclass
class SavedUpload:
    name: str  # the name as uploaded
    path: Path  # where it was saved (inside the upload folder)
    unchanged: bool = False  # the same bytes were already there
    previous: Path | None = None  # the earlier file of the same name, set aside until ingest succeeds


@dataclass
class SaveResult:
    saved: list[SavedUpload] = field(default_factory=list)
    failures: list[UploadFailure] = field(default_factory=list)


def sanitize_filename(name: str, supported_extensions: frozenset[str]) -> str:
    """A safe file name for ``name``: its last path component, without control or reserved characters, leading
    dots or surrounding spaces, at most 255 bytes, with a supported extension. Raises UploadError."""
    shown = name if name else "(no name)"
    base = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _SPACES.sub(" ", _UNSAFE_CHARS.sub("_", base)).strip().lstrip(".").strip()
    stem, ext = os.path.splitext(base)
    ext = ext.lower()
    if ext not in supported_extensions:
        raise UploadError(shown, f"file type {ext or '(none)'!r} is not supported "
                                 f"(supported: {', '.join(sorted(supported_extensions))})")
    stem = stem.strip().strip(".")
    if not stem or set(stem) <= {"_"}:
        raise UploadError(shown, "the file name has no usable characters")
    while len((stem + ext).encode("utf-8")) > _MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + ext


def _inside(folder: Path, name: str) -> Path:
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise UploadError(name, "the file name would leave the upload folder")
    return target


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_upload(name: str, data: bytes, upload_dir: Path, limits: LimitSettings,
                supported_extensions: frozenset[str]) -> SavedUpload:
    """Check and save one upload; raises UploadError naming the file and the problem."""
    if len(data) > limits.max_upload_mb * _MB:
        raise UploadError(name, f"{len(data) / _MB:.1f} MB is over the upload limit of {limits.max_upload_mb:g} MB "
                                f"(LimitSettings.max_upload_mb)")
    if not data:
        raise UploadError(name, "the file is empty")
    safe = sanitize_filename(name, supported_extensions)
    upload_dir.mkdir(parents=True, exist_ok=True)
    target = _inside(upload_dir, safe)
    previous = None
    if target.exists():
        if target.is_file() and target.read_bytes() == data:
            return SavedUpload(name, target, unchanged=True)
        # A name of its own (hidden, so no ingest picks it up): a rollback puts back exactly this upload's
        # predecessor, never another upload's.
        fd, backup = tempfile.mkstemp(prefix="." + target.name + ".", suffix=_BACKUP_SUFFIX, dir=upload_dir)
        os.close(fd)
        previous = Path(backup)
        os.replace(target, previous)
    try:
        _write_atomically(target, data)
    except OSError as exc:
        if previous is not None:
            os.replace(previous, target)
        raise UploadError(name, f"cannot save it: {exc.strerror or exc}") from exc
    return SavedUpload(name, target, previous=previous)


def save_uploads(files: Iterable[tuple[str, bytes]], upload_dir: Path, limits: LimitSettings,
                 supported_extensions: frozenset[str]) -> SaveResult:
    """Save every acceptable upload; each rejected one becomes a failure naming it, the rest go on."""
    result = SaveResult()
    taken: set[str] = set()
    for name, data in files:
        try:
            safe = sanitize_filename(name, supported_extensions)
            if safe in taken:
                raise UploadError(name, f"another file in this upload is also saved as {safe!r}")
            taken.add(safe)
            result.saved.append(save_upload(name, data, upload_dir, limits, supported_extensions))
        except UploadError as exc:
            result.failures.append(UploadFailure(name, exc.reason))
    return result


def settle(saved: SavedUpload, ingested: bool) -> None:
    """After ingest: keep the new file and drop the earlier one, or (on failure) put the earlier one back."""
    if saved.unchanged:
        return
    if ingested:
        if saved.previous is not None:
            saved.previous.unlink(missing_ok=True)
    elif saved.previous is not None:
        os.replace(saved.previous, saved.path)
    else:
        saved.path.unlink(missing_ok=True)
