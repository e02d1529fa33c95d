"""Files uploaded through the web page: sanitised names, size limit, saved only inside the upload folder.

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
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from app.config import LimitSettings, Settings
from ingest.ingest_pipeline import IngestOptions, run_ingest
from ingest.ingest_report import IngestReport
from ingest.loaders import SUPPORTED_EXTENSIONS

if TYPE_CHECKING:
    from ingest.embedder import Embedder

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
        previous = target.with_name("." + target.name + _BACKUP_SUFFIX)
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


ProgressCallback = Callable[[float, str], None]


class _CountingEmbedder:
    """Wraps the real embedder to report how many passages have been embedded (ingest's slow stage)."""

    def __init__(self, inner: Embedder, total: int, on_progress: ProgressCallback):
        self._inner, self._total, self._done, self._on_progress = inner, max(total, 1), 0, on_progress
        self.name, self.dimension = inner.name, inner.dimension

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        vectors = self._inner.encode_passages(texts, show_progress)
        self._done += len(texts)
        self._on_progress(min(self._done / self._total, 1.0), "embed")
        return vectors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class UploadOutcome:
    """What happened to one upload: saved and ingested, unchanged, or failed with a reason."""

    ingested: list[str] = field(default_factory=list)  # names as uploaded
    unchanged: list[str] = field(default_factory=list)
    failures: list[UploadFailure] = field(default_factory=list)
    report: IngestReport | None = None


def ingest_uploads(files: Iterable[tuple[str, bytes]], settings: Settings,
                   on_progress: ProgressCallback = lambda fraction, stage: None,
                   embedder: Embedder | None = None) -> UploadOutcome:
    """Save the uploads into ``settings.upload_path`` and run the same incremental ingest as ``python -m ingest``
    on them. ``on_progress(fraction, stage)`` follows saving, chunking and embedding. Files that fail (bad name,
    too big, unreadable) are reported by name; the rest are ingested. Raises KnowledgeBaseLockedError when another
    ingest is running (uploads are then rolled back)."""
    outcome = UploadOutcome()
    saved = save_uploads(files, settings.upload_path, settings.limits, SUPPORTED_EXTENSIONS)
    outcome.failures.extend(saved.failures)
    outcome.unchanged = [s.name for s in saved.saved if s.unchanged]
    todo = [s for s in saved.saved if not s.unchanged]
    on_progress(0.05, "save")
    if not todo:
        return outcome
    paths = [s.path for s in todo]
    try:
        # A dry run loads and chunks the files to learn how many passages the real run will embed.
        planned = run_ingest(settings, paths, IngestOptions(dry_run=True, progress=False))
        on_progress(0.1, "chunk")
        if embedder is None:
            from ingest.embedder import load_embedder

            embedder = load_embedder(settings.embedder, settings.models_path)
        counting = _CountingEmbedder(embedder, planned.chunks_added, on_progress)
        report = run_ingest(settings, paths, IngestOptions(progress=False), embedder_factory=lambda: counting)
    except BaseException:
        for item in todo:
            settle(item, ingested=False)
        raise
    failed = {f.path: f.reason for f in report.failures}
    for item in todo:
        reason = failed.get(str(item.path)) or failed.get(os.path.abspath(item.path))
        settle(item, ingested=reason is None)
        if reason is None:
            outcome.ingested.append(item.name)
        else:
            outcome.failures.append(UploadFailure(item.name, reason))
    outcome.report = report
    on_progress(1.0, "done")
    return outcome
