"""Uploads into the knowledge base: save them (app/uploads/saving.py), then run the same incremental ingest as
``python -m ingest`` on them, reporting progress and the outcome of each file by the name it was uploaded under."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from app.config import Settings
from app.uploads.saving import UploadFailure, save_uploads, settle
from app.wiring import load_embedder, run_ingest
from ingest.loaders.document_loader import SUPPORTED_EXTENSIONS
from ingest.pipeline.ingest_pipeline import IngestOptions
from ingest.pipeline.ingest_report import IngestReport
from ingest.store.kb_lock import WriterLock

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder

ProgressCallback = Callable[[float, str], None]


class _CountingEmbedder:
    """Wraps the real embedder to report how many passages have been embedded (ingest's slow stage)."""

    def __init__(self, inner: Embedder, total: int, on_progress: ProgressCallback):
        self._inner, self._total, self._done, self._on_progress = inner, max(total, 1), 0, on_progress
        self.name, self.dimension = inner.name, inner.dimension

    def _count(self, n: int) -> None:
        self._done += n
        self._on_progress(min(self._done / self._total, 1.0), "embed")

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        vectors = self._inner.encode_passages(texts, show_progress)
        self._count(len(texts))
        return vectors

    def encode_passages_with_tokens(self, texts: list[str],
                                    show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        encoded = self._inner.encode_passages_with_tokens(texts, show_progress)
        self._count(len(texts))
        return encoded

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
    # The knowledge base's writer lock is held from saving to settling: a second upload (another page session,
    # the HTTP API) or `python -m ingest` waits its turn elsewhere instead of replacing or rolling back files
    # this upload is ingesting. Re-entrant: the ingest inside takes the same lock again.
    with WriterLock(settings.kb_path):
        return _ingest_uploads_locked(files, settings, on_progress, embedder)


def _ingest_uploads_locked(files: Iterable[tuple[str, bytes]], settings: Settings, on_progress: ProgressCallback,
                           embedder: Embedder | None) -> UploadOutcome:
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
            embedder = load_embedder(settings)
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
