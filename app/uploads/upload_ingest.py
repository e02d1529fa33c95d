"""Uploads into the knowledge base: save them (app/uploads/saving.py), then run the same incremental ingest as
``python -m ingest`` on them — once — reporting progress and the outcome of each file by the name it was uploaded
under."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from app.config import Settings
from app.uploads.saving import (
    StagedUpload,
    UploadError,
    UploadFailure,
    discard,
    recover_interrupted,
    save_uploads,
    settle,
    stage_upload,
)
from app.wiring import knowledge_store, load_embedder, run_ingest
from ingest.loaders.document_loader import SUPPORTED_EXTENSIONS
from ingest.pipeline.ingest_pipeline import IngestOptions
from ingest.pipeline.ingest_report import IngestReport
from ingest.pipeline.progress import SAVE, IngestProgress, ProgressCallback
from ingest.pipeline.source_scan import file_sha256
from ingest.store.kb_lock import WriterLock
from ingest.store.knowledge_base import KnowledgeBaseError

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
    # What an earlier, interrupted upload left and what was done about it (one line each).
    notices: list[str] = field(default_factory=list)


def ingest_uploads(files: Iterable[tuple[str, bytes] | StagedUpload], settings: Settings,
                   progress: ProgressCallback = _silent,
                   embedder: Embedder | None = None) -> UploadOutcome:
    """Save the uploads (bytes, or files already staged by ``app.uploads.saving``: each staged file is consumed) into
    ``settings.upload_path`` and run the same incremental ingest as ``python -m ingest`` on them.
    ``progress`` follows saving, then the ingest's loading (and OCR), embedding and commit. Files that fail (bad name, too big,
    unreadable) are reported by name; the rest are ingested. Raises KnowledgeBaseLockedError when another ingest is
    running (uploads are then rolled back)."""
    files = list(files)
    try:
        # The knowledge base's writer lock is held from saving to settling: a second upload (another page session,
        # the HTTP API) or `python -m ingest` waits its turn elsewhere instead of replacing or rolling back files
        # this upload is ingesting. Re-entrant: the ingest inside takes the same lock again.
        with WriterLock(settings.kb_path):
            return _ingest_uploads_locked(files, settings, progress, embedder)
    finally:
        discard(f for f in files if isinstance(f, StagedUpload))  # those not put under their names


def recover_interrupted_uploads(settings: Settings) -> list[str]:
    """Under the writer lock: undo what an upload killed before it was settled left in the upload folder (see
    ``app.uploads.saving.recover_interrupted``), one line each."""
    try:
        known = {doc.path: doc for doc in knowledge_store(settings).live_documents()[1]}
    except KnowledgeBaseError:
        known = {}  # a damaged base: nothing counts as ingested, so the unconfirmed uploads are set aside

    def was_ingested(path: Path) -> bool:
        doc = known.get(str(path))
        return doc is not None and doc.content_hash == file_sha256(str(path))

    return recover_interrupted(settings.upload_path, was_ingested)


def _staged(files: list[tuple[str, bytes] | StagedUpload], settings: Settings,
            outcome: UploadOutcome) -> list[StagedUpload]:
    staged = []
    for item in files:
        if isinstance(item, StagedUpload):
            staged.append(item)
            continue
        name, data = item
        try:
            staged.append(stage_upload(name, io.BytesIO(data), settings.upload_path, settings.limits))
        except UploadError as exc:
            outcome.failures.append(UploadFailure(name, exc.reason))
    return staged


def _ingest_uploads_locked(files: list[tuple[str, bytes] | StagedUpload], settings: Settings,
                           progress: ProgressCallback, embedder: Embedder | None) -> UploadOutcome:
    outcome = UploadOutcome(notices=recover_interrupted_uploads(settings))
    progress(IngestProgress(SAVE, 0, len(files)))
    saved = save_uploads(_staged(files, settings, outcome), settings.upload_path, SUPPORTED_EXTENSIONS)
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
