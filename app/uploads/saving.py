"""Saving uploaded files: sanitised names, size limit, only inside the upload folder, never half a file.

An upload's bytes are first *staged*: written, block by block and under the per-file limit, to a hidden
``.partial`` file inside the upload folder (no scan picks up a hidden file, and the final rename stays on one file
system). Only a complete staged file is put under its name. Each upload is checked on its own, so one bad file is
reported by name without losing the others. A file that replaces an earlier upload of the same name keeps the
earlier version aside until the ingest has read the new one; if the new one fails, the earlier file is put back,
so the folder always matches what the knowledge base holds.

Until an upload is settled, a pending marker beside it records what it replaced. A process killed in between
leaves the marker: the next writer (``recover_interrupted``) sets the unconfirmed file aside in ``.interrupted/``
and puts the earlier version back, so a re-scan does not silently ingest an upload nobody was told succeeded; the
user can still ask for it (a re-scan with ``include_interrupted``).
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import tempfile
import unicodedata
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from app.config import LimitSettings

_MB = 1024 * 1024
# Bytes copied per step while staging: an upload is never held in memory whole.
_BLOCK = 1 << 20
# Longest file name most file systems accept, in bytes of UTF-8.
_MAX_NAME_BYTES = 255
# Characters that are unsafe or invalid in file names on some system (Windows reserved set included).
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_SPACES = re.compile(r"\s+")
_BACKUP_SUFFIX = ".previous"
STAGED_SUFFIX = ".partial"
_STAGED_NAME = re.compile(r"^\.(\d+)-[0-9a-f]{32}" + re.escape(STAGED_SUFFIX) + "$")
_PENDING_PREFIX = ".pending-"
INTERRUPTED_DIR = ".interrupted"


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
class StagedUpload:
    """An upload's complete bytes in a hidden file inside the upload folder, waiting to be put under its name."""

    name: str  # the name as uploaded
    path: Path
    size: int


@dataclass
class SavedUpload:
    name: str  # the name as uploaded
    path: Path  # where it was saved (inside the upload folder)
    unchanged: bool = False  # the same bytes were already there
    previous: Path | None = None  # the earlier file of the same name, set aside until ingest succeeds
    marker: Path | None = None  # the pending marker, removed when the upload is settled


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


def over_limit_reason(limits: LimitSettings) -> str:
    return f"over the upload limit of {limits.max_upload_mb:g} MB (limits.max_upload_mb)"


def max_upload_bytes(limits: LimitSettings) -> int:
    return int(limits.max_upload_mb * _MB)


def staging_path(upload_dir: Path) -> Path:
    """A new hidden ``.partial`` name in ``upload_dir`` (created if needed), naming this process so a later one
    can tell a leftover of a dead process from an upload still arriving."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    return upload_dir / f".{os.getpid()}-{uuid.uuid4().hex}{STAGED_SUFFIX}"


def stage_upload(name: str, stream: BinaryIO, upload_dir: Path, limits: LimitSettings) -> StagedUpload:
    """Copy ``stream`` to a staged file block by block, stopping at the per-file limit (UploadError naming the
    file; nothing is left behind)."""
    path = staging_path(upload_dir)
    limit, size = max_upload_bytes(limits), 0
    try:
        with open(path, "wb") as out:
            while block := stream.read(_BLOCK):
                size += len(block)
                if size > limit:
                    raise UploadError(name, over_limit_reason(limits))
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UploadError(name, f"cannot save it: {exc.strerror or exc}") from exc
        raise
    return StagedUpload(name, path, size)


def discard(staged: Iterable[StagedUpload]) -> None:
    """Delete staged files that were not put under their names (a refused request, a failed upload)."""
    for item in staged:
        item.path.unlink(missing_ok=True)


def _inside(folder: Path, name: str) -> Path:
    target = (folder / name).resolve()
    if target.parent != folder.resolve():
        raise UploadError(name, "the file name would leave the upload folder")
    return target


def _marker_path(upload_dir: Path, safe: str) -> Path:
    return upload_dir / f"{_PENDING_PREFIX}{hashlib.sha256(safe.encode('utf-8')).hexdigest()[:16]}.json"


def _write_marker(marker: Path, safe: str, previous: Path | None) -> None:
    with open(marker, "w", encoding="utf-8") as out:
        json.dump({"name": safe, "previous": previous.name if previous else None}, out, ensure_ascii=False)
        out.flush()
        os.fsync(out.fileno())


def save_upload(staged: StagedUpload, upload_dir: Path, supported_extensions: frozenset[str]) -> SavedUpload:
    """Put a staged upload under its sanitised name (the staged file is consumed or, on UploadError, left for the
    caller to discard)."""
    if staged.size == 0:
        raise UploadError(staged.name, "the file is empty")
    safe = sanitize_filename(staged.name, supported_extensions)
    target = _inside(upload_dir, safe)
    if target.is_file() and filecmp.cmp(staged.path, target, shallow=False):
        staged.path.unlink(missing_ok=True)
        return SavedUpload(staged.name, target, unchanged=True)
    previous = None
    if target.exists():
        # A name of its own (hidden, so no ingest picks it up): a rollback puts back exactly this upload's
        # predecessor, never another upload's.
        fd, backup = tempfile.mkstemp(prefix="." + target.name + ".", suffix=_BACKUP_SUFFIX, dir=upload_dir)
        os.close(fd)
        previous = Path(backup)
    # The marker first: whatever step a kill interrupts below, it says how to undo it.
    marker = _marker_path(upload_dir, safe)
    try:
        _write_marker(marker, safe, previous)
        if previous is not None:
            os.replace(target, previous)
        os.replace(staged.path, target)
    except OSError as exc:
        if previous is not None and not target.exists() and previous.exists():
            os.replace(previous, target)
        elif previous is not None:
            previous.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        raise UploadError(staged.name, f"cannot save it: {exc.strerror or exc}") from exc
    return SavedUpload(staged.name, target, previous=previous, marker=marker)


def save_uploads(staged: Iterable[StagedUpload], upload_dir: Path,
                 supported_extensions: frozenset[str]) -> SaveResult:
    """Put every acceptable staged upload under its name; each rejected one becomes a failure naming it (its staged
    file is deleted), the rest go on."""
    result = SaveResult()
    taken: set[str] = set()
    for item in staged:
        try:
            safe = sanitize_filename(item.name, supported_extensions)
            if safe in taken:
                raise UploadError(item.name, f"another file in this upload is also saved as {safe!r}")
            taken.add(safe)
            result.saved.append(save_upload(item, upload_dir, supported_extensions))
        except UploadError as exc:
            item.path.unlink(missing_ok=True)
            result.failures.append(UploadFailure(item.name, exc.reason))
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
    if saved.marker is not None:
        saved.marker.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def recover_interrupted(upload_dir: Path, was_ingested: Callable[[Path], bool]) -> list[str]:
    """Under the writer lock: settle what a killed upload left (one line each). An upload whose ingest committed
    (``was_ingested(path)``) is kept; any other is moved to ``.interrupted/`` with its earlier version put back.
    Staged files of dead processes are deleted."""
    notices = []
    if not upload_dir.is_dir():
        return notices
    for marker in sorted(upload_dir.glob(f"{_PENDING_PREFIX}*.json")):
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
            target = _inside(upload_dir, str(record["name"]))
            previous = _inside(upload_dir, str(record["previous"])) if record.get("previous") else None
        except (OSError, ValueError, KeyError, TypeError):
            marker.unlink(missing_ok=True)  # unreadable: it cannot say what to undo
            continue
        if target.is_file() and was_ingested(target):
            if previous is not None:
                previous.unlink(missing_ok=True)
        else:
            aside = upload_dir / INTERRUPTED_DIR / target.name
            if target.exists():
                aside.parent.mkdir(exist_ok=True)
                os.replace(target, aside)
            if previous is not None and previous.exists():
                os.replace(previous, target)
            restored = " (its earlier version is back)" if previous is not None else ""
            notices.append(f"{target.name}: an upload cut off before it was ingested was set aside in {aside}"
                           f"{restored}; upload it again, or re-scan with include_interrupted, to ingest it")
        marker.unlink(missing_ok=True)
    for staged in upload_dir.glob(f".*{STAGED_SUFFIX}"):
        match = _STAGED_NAME.match(staged.name)
        if match and not _alive(int(match.group(1))):
            staged.unlink(missing_ok=True)
    return notices


def interrupted_uploads(upload_dir: Path) -> list[StagedUpload]:
    """The uploads ``recover_interrupted`` set aside, as staged uploads to ingest when the user asks for them."""
    folder = upload_dir / INTERRUPTED_DIR
    if not folder.is_dir():
        return []
    return [StagedUpload(p.name, p, p.stat().st_size) for p in sorted(folder.iterdir()) if p.is_file()]

