"""Uploads into the knowledge base: save them (app/uploads/saving.py), then run the same incremental ingest as
``python -m ingest`` on them — once — reporting progress and the outcome of each file by the name it was uploaded
under."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from app.config import Settings
from app.uploads.saving import UploadFailure, save_uploads, settle
from app.wiring import load_embedder, run_ingest
from ingest.loaders.document_loader import SUPPORTED_EXTENSIONS
from ingest.pipeline.ingest_pipeline import IngestOptions
from ingest.pipeline.ingest_report import IngestReport
from ingest.pipeline.progress import SAVE, IngestProgress, ProgressCallback
from ingest.store.kb_lock import WriterLock

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder


def _silent(event: IngestProgress) -> None:
    """The progress callback of an upload nobody watches."""


@dataclass
class UploadOutcome:
    """What happened to one upload: saved and ingested, unchanged, or failed with a reason."""

    ingested: list[str] = field(default_factory=list)  # names as uploaded
    unchanged: list[str] = field(default_factory=list)
    failures: list[UploadFailure] = field(default_factory=list)
    report: IngestReport | None = None


def ingest_uploads(files: Iterable[tuple[str, bytes]], settings: Settings, progress: ProgressCallback = _silent,
                   embedder: Embedder | None = None) -> UploadOutcome:
    """Save the uploads into ``settings.upload_path`` and run the same incremental ingest as ``python -m ingest``
    on them. ``progress`` follows saving, then the ingest's loading (and OCR), embedding and commit. Files that
    fail (bad name, too big, unreadable) are reported by name; the rest are ingested. Raises
    KnowledgeBaseLockedError when another ingest is running (uploads are then rolled back)."""
    # The knowledge base's writer lock is held from saving to settling: a second upload (another page session,
    # the HTTP API) or `python -m ingest` waits its turn elsewhere instead of replacing or rolling back files
    # this upload is ingesting. Re-entrant: the ingest inside takes the same lock again.
    with WriterLock(settings.kb_path):
        return _ingest_uploads_locked(list(files), settings, progress, embedder)


def _ingest_uploads_locked(files: list[tuple[str, bytes]], settings: Settings, progress: ProgressCallback,
                           embedder: Embedder | None) -> UploadOutcome:
    outcome = UploadOutcome()
    progress(IngestProgress(SAVE, 0, len(files)))
    saved = save_uploads(files, settings.upload_path, settings.limits, SUPPORTED_EXTENSIONS)
    progress(IngestProgress(SAVE, len(files), len(files)))
    outcome.failures.extend(saved.failures)
    outcome.unchanged = [s.name for s in saved.saved if s.unchanged]
    todo = [s for s in saved.saved if not s.unchanged]
    if not todo:
        return outcome
    def load() -> Embedder:  # called by the run only if there is something to embed
        return embedder if embedder is not None else load_embedder(settings)

    try:
        report = run_ingest(settings, [s.path for s in todo], IngestOptions(progress=progress),
                            embedder_factory=load)
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
    return outcome
