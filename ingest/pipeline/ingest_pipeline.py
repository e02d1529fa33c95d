"""One incremental ingest run: scan → plan → load and chunk → embed (cached) → write a new generation.

Unchanged files are skipped, changed ones replaced, files gone from the ingested folders removed, and content
already stored under another path is not embedded again. A file that cannot be loaded is reported and skipped;
its previously ingested version, if any, stays. Everything is committed at once at the end (see kb_writer).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import faiss
import numpy as np

from ingest.chunking.chunker import chunk_document
from ingest.embedding.embedding_cache import (
    EmbeddingCache,
    passage_fingerprint,
    text_hash,
)
from ingest.loaders.document_loader import (
    SUPPORTED_EXTENSIONS,
    LoadError,
    load_document,
)
from ingest.pipeline.ingest_plan import IngestPlan, plan_ingest
from ingest.pipeline.ingest_report import FileFailure, IngestReport
from ingest.pipeline.progress import COMMIT, EMBED, LOAD, OCR, IngestProgress, ProgressCallback
from ingest.pipeline.source_scan import (
    ScanResult,
    SourceFile,
    printable_path,
    scan_sources,
    under_roots,
)
from ingest.records import ChunkDraft, DocumentRecord
from ingest.settings import IndexSettings, IngestConfig
from ingest.store.catalog import Catalog, CatalogError
from ingest.store.kb_layout import EMBEDDING_CACHE_FILE, TOKEN_VECTORS_FILE
from ingest.store.kb_lock import WriterLock
from ingest.store.kb_writer import (
    GenerationWriter,
    KeywordBuilder,
    LiveState,
    clean_leftovers,
    collect_garbage,
    live_state,
    repair_pointer,
)
from ingest.store.knowledge_base import (
    KnowledgeBaseError,
    check_generation_files,
    damaged_message,
    keyword_index_problem,
)
from ingest.store.store_files import describe_os_problem
from ingest.store.token_store import TokenVectorStore

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder

log = logging.getLogger(__name__)


@dataclass
class LoadedContent:
    """New content to store: its chunks, and every path (new or changed) that holds it."""

    content_hash: str
    title: str
    file_type: str
    drafts: list[ChunkDraft]
    sources: list[SourceFile]


def _silent(event: IngestProgress) -> None:
    """The progress callback of a run nobody watches."""


@dataclass
class IngestOptions:
    rebuild: bool = False  # start from an empty knowledge base (keeps only what is under the given paths)
    dry_run: bool = False  # plan, load and chunk, report; embed and write nothing
    # Called as the run goes (loading files, OCR pages, embedding passages, committing). The terminal passes
    # ingest.pipeline.progress.TerminalProgress() for tqdm bars; the default reports nothing.
    progress: ProgressCallback = _silent


class KnowledgeBaseWriteError(KnowledgeBaseError):
    """The knowledge base cannot be written: the disk is full or permissions forbid it (nothing was changed)."""


class IngestSetupError(Exception):
    """Something the run needs cannot be set up (e.g. the embedding model does not load)."""


def _default_embedder(settings: IngestConfig) -> "Embedder":
    from ingest.embedding.embedder import EmbedderError
    from ingest.embedding.ray_embedding import RayUnavailableError, load_ingest_embedder
    try:
        return load_ingest_embedder(settings.embedder, settings.models_path)
    except (EmbedderError, RayUnavailableError) as exc:
        raise IngestSetupError(str(exc)) from exc


def _passages_per_call(settings: IngestConfig) -> int:
    """Passages handed to the embedder per call (it length-sorts each call into batches); Ray starts a job per call."""
    s = settings.embedder
    return s.ray_job_passages if s.runner == "ray" else max(s.batch_size, s.passages_per_call)


def _default_keyword_builder(settings: IngestConfig) -> KeywordBuilder:
    from ingest.store.keyword_index import build_keyword_index
    return lambda ids, texts, out_dir: build_keyword_index(ids, texts, out_dir, settings.index)


def _known_documents(settings: IngestConfig, rebuild: bool) -> dict[str, DocumentRecord]:
    return {} if rebuild else _known_documents_of(settings.kb_path)


def _known_documents_of(kb_dir: Path) -> dict[str, DocumentRecord]:
    live = live_state(kb_dir)
    if live is None:
        return {}
    check_generation_files(kb_dir, live.paths)  # damage anywhere in the catalog is named before it is read
    try:
        catalog = Catalog.open_readonly(live.paths.catalog)
    except CatalogError as exc:
        raise KnowledgeBaseError(damaged_message(kb_dir, exc)) from exc
    try:
        return {doc.path: doc for doc in catalog.documents()}
    finally:
        catalog.close()


def _load_contents(plan: IngestPlan, known_hashes: set[str], settings: IngestConfig, report: IngestReport,
                   progress: ProgressCallback) -> tuple[list[LoadedContent], list[tuple[SourceFile, str]]]:
    """Load and chunk new/changed files whose content is not stored yet.

    Returns the new contents, and the (file, content hash) pairs whose content is already stored (duplicates).
    """
    contents: dict[str, LoadedContent] = {}
    duplicates: list[tuple[SourceFile, str]] = []
    failed_hashes: dict[str, str] = {}
    todo = plan.new + plan.changed
    progress(IngestProgress(LOAD, 0, len(todo)))
    for done, (source, digest) in enumerate(todo, start=1):
        _load_one(source, digest, known_hashes, settings, report, progress, contents, duplicates, failed_hashes)
        progress(IngestProgress(LOAD, done, len(todo), source.path))
    return list(contents.values()), duplicates


def _load_one(source: SourceFile, digest: str | None, known_hashes: set[str], settings: IngestConfig,
              report: IngestReport, progress: ProgressCallback, contents: dict[str, LoadedContent],
              duplicates: list[tuple[SourceFile, str]], failed_hashes: dict[str, str]) -> None:
    """Load and chunk one file into ``contents`` (or note it as a duplicate or a failure)."""
    if digest is not None and digest in known_hashes:
        duplicates.append((source, digest))
        return
    if digest is not None and digest in contents:
        contents[digest].sources.append(source)
        return
    if digest is not None and digest in failed_hashes:
        _fail(report, source.path, failed_hashes[digest])
        return
    try:
        doc = load_document(Path(source.path), settings.limits, settings.ocr,
                            lambda done, total: progress(IngestProgress(OCR, done, total, source.path)))
        drafts = chunk_document(doc, settings.chunking)
    except LoadError as exc:
        _fail(report, source.path, exc.reason)
        if digest is not None:
            failed_hashes[digest] = exc.reason
        return
    if len(drafts) > settings.limits.max_chunks_per_document:
        reason = (f"makes {len(drafts)} chunks, over the limit of {settings.limits.max_chunks_per_document} "
                  "(limits.max_chunks_per_document)")
        _fail(report, source.path, reason)
        failed_hashes[doc.content_hash] = reason
        return
    if doc.content_hash in known_hashes:  # the file changed to stored content since it was hashed
        duplicates.append((source, doc.content_hash))
    elif doc.content_hash in contents:
        contents[doc.content_hash].sources.append(source)
    else:
        contents[doc.content_hash] = LoadedContent(doc.content_hash, doc.title, doc.file_type, drafts, [source])


def _fail(report: IngestReport, path: str, reason: str) -> None:
    failure = FileFailure(path, reason)
    report.failures.append(failure)
    log.warning("skipped %s", failure)


def _embed(texts: Sequence[str], embedder: "Embedder", cache: EmbeddingCache, tokens: TokenVectorStore | None,
           settings: IngestConfig, report: IngestReport, progress: ProgressCallback) -> dict[str, np.ndarray]:
    """Vectors for ``texts`` keyed by text hash: from the cache, else embedded batch by batch and cached at once.
    With a token store, passages without stored token vectors are embedded too, storing both from one pass."""
    vectors = cache.get_many(texts)
    lacking_tokens = set(tokens.missing(texts)) if tokens is not None else set()
    distinct = list(dict.fromkeys(texts))
    missing = [t for t in distinct if text_hash(t) not in vectors or t in lacking_tokens]
    report.passages_cached = len(distinct) - len(missing)
    batch_size = _passages_per_call(settings)
    started = time.perf_counter()
    progress(IngestProgress(EMBED, 0, len(missing)))
    for start in range(0, len(missing), batch_size):
        batch = missing[start:start + batch_size]
        if tokens is None:
            embedded = embedder.encode_passages(batch)
        else:
            embedded, token_vectors = embedder.encode_passages_with_tokens(batch)
            tokens.add(batch, token_vectors, settings.index)
        embedded = np.ascontiguousarray(embedded, dtype=np.float32)
        faiss.normalize_L2(embedded)  # the contract says normalised; inner-product search relies on it
        cache.put_many(batch, embedded)
        vectors.update((text_hash(t), v) for t, v in zip(batch, embedded))
        progress(IngestProgress(EMBED, start + len(batch), len(missing)))
    report.passages_embedded = len(missing)
    report.embed_seconds = time.perf_counter() - started
    return vectors


def _document(source: SourceFile, content_hash: str, n_chunks: int, title: str, file_type: str) -> DocumentRecord:
    return DocumentRecord(path=source.path, content_hash=content_hash, mtime=source.mtime or 0.0,
                          size=source.size or 0, n_chunks=n_chunks, file_type=file_type, title=title,
                          updated_at=time.time())


def _apply(writer: GenerationWriter, plan: IngestPlan, contents: list[LoadedContent],
           duplicates: list[tuple[SourceFile, str]], vectors: dict[str, np.ndarray], report: IngestReport) -> None:
    catalog = writer.catalog
    new_paths = {source.path for source, _ in plan.new}
    # Duplicates first: the stored copy they point to may be a file removed or changed in this same run.
    for source, digest in duplicates:
        stored = catalog.document_with_content(digest)
        assert stored is not None, "duplicate of content missing from the catalog"
        catalog.put_document(_document(source, digest, stored.n_chunks, stored.title, stored.file_type))
        report.files_duplicate += 1
        report.files_added += source.path in new_paths
        report.files_updated += source.path not in new_paths
    for path in plan.removed:
        catalog.remove_document(path)
    for source, previous in plan.touched:
        catalog.put_document(_document(source, previous.content_hash, previous.n_chunks, previous.title,
                                       previous.file_type))
    for content in contents:
        ids = catalog.add_chunks(content.content_hash, content.drafts)
        writer.add(ids, np.stack([vectors[text_hash(d.text)] for d in content.drafts]) if ids else [])
        report.chunks_added += len(ids)
        report.files_duplicate += len(content.sources) - 1
        for source in content.sources:
            catalog.put_document(_document(source, content.content_hash, len(ids), content.title, content.file_type))
            report.files_added += source.path in new_paths
            report.files_updated += source.path not in new_paths
    orphans = catalog.remove_orphan_contents()
    writer.remove(orphans)
    report.chunks_removed = len(orphans)
    report.files_removed = len(plan.removed)


def _live_texts(kb_dir: Path) -> list[tuple[int, str]]:
    live = live_state(kb_dir)
    catalog = Catalog.open_readonly(live.paths.catalog)
    try:
        return list(catalog.iter_id_text())
    finally:
        catalog.close()


def _collect_garbage(kb_dir: Path, settings: IndexSettings) -> None:
    for name in collect_garbage(kb_dir, settings.keep_generations, settings.gc_grace_seconds):
        log.info("removed old generation %s", name)


@dataclass
class PreparedWork:
    """Everything decided before touching the knowledge base: the plan and the loaded, chunked new content."""

    plan: IngestPlan
    contents: list[LoadedContent]
    duplicates: list[tuple[SourceFile, str]]

    @property
    def texts(self) -> list[str]:
        return [d.text for c in self.contents for d in c.drafts]

    @property
    def has_changes(self) -> bool:
        return bool(self.contents or self.duplicates or self.plan.touched or self.plan.removed)


def _write_generation(settings: IngestConfig, options: IngestOptions, work: PreparedWork, embedder: "Embedder | None",
                      name: str, dimension: int, build_keywords: KeywordBuilder, report: IngestReport) -> None:
    """Embed the new chunks (through the cache), apply every change to a new generation and commit it."""
    kb_dir = settings.kb_path
    writer = GenerationWriter.start(kb_dir, name, dimension, settings.index, rebuild=options.rebuild)
    cache: EmbeddingCache | None = None
    tokens: TokenVectorStore | None = None
    try:
        vectors: dict[str, np.ndarray] = {}
        if work.texts and embedder is not None:
            fingerprint = passage_fingerprint(embedder.name, dimension, settings.embedder)
            cache = EmbeddingCache(kb_dir / EMBEDDING_CACHE_FILE, fingerprint, dimension)
            if settings.index.store_token_vectors:
                tokens = TokenVectorStore.open(kb_dir / TOKEN_VECTORS_FILE, fingerprint, dimension)
            vectors = _embed(work.texts, embedder, cache, tokens, settings, report, options.progress)
        _apply(writer, work.plan, work.contents, work.duplicates, vectors, report)
        (options.progress)(IngestProgress(COMMIT, 0, 1))
        manifest = writer.commit(build_keywords)
    except BaseException:
        writer.abort()
        for store in (cache, tokens):
            if store is not None:
                store.close()
        raise
    if cache is not None:
        live_texts = [text for _, text in _live_texts(kb_dir)]
        for store in (cache, tokens):
            if store is not None:
                try:
                    store.retain(live_texts)
                finally:
                    store.close()
    (options.progress)(IngestProgress(COMMIT, 1, 1))
    report.committed = True
    report.generation = manifest.generation
    report.chunks_total = manifest.n_chunks
    report.documents_total = manifest.n_documents


def _prepare(settings: IngestConfig, paths: Sequence[Path], options: IngestOptions, report: IngestReport) -> PreparedWork:
    """Scan, compare with the catalog, load and chunk what is new."""
    scan = scan_sources(paths, SUPPORTED_EXTENSIONS)
    for path in scan.undecodable:
        _fail(report, printable_path(path), "file name is not valid UTF-8 (rename the file to ingest it)")
    known = _known_documents(settings, options.rebuild)
    _report_blind_spots(scan, known, report)
    plan = plan_ingest(scan, known)
    report.files_skipped = len(plan.unchanged) + len(plan.touched)
    known_hashes = {doc.content_hash for doc in known.values()}
    contents, duplicates = _load_contents(plan, known_hashes, settings, report, options.progress)
    return PreparedWork(plan, contents, duplicates)


def _report_blind_spots(scan: ScanResult, known: dict[str, DocumentRecord], report: IngestReport) -> None:
    """One line per given path that is missing and per folder that cannot be listed, saying that the documents
    ingested from there are kept (the plan removes nothing under them)."""
    for root, reason in [(r, "no such file or folder") for r in scan.missing_roots] + sorted(scan.unreadable.items()):
        kept = sum(1 for path in known if under_roots(path, [root]))
        detail = f"; the {kept} document(s) ingested from it are kept" if kept else ""
        _fail(report, printable_path(root), f"{reason}{detail}")


def _warn_rebuild_drops(kb_dir: Path, plan: IngestPlan) -> None:
    """A rebuild keeps only what is under the paths given: say how many documents of the old base that drops."""
    try:
        known = _known_documents_of(kb_dir)
    except KnowledgeBaseError:
        return  # a damaged base: what it held cannot be counted
    kept = {source.path for source in plan.unchanged} | {s.path for s, _ in plan.new + plan.changed}
    dropped = sorted(set(known) - kept)
    if dropped:
        log.warning("--rebuild keeps only the paths given: %d document(s) of the previous knowledge base are not "
                    "under them and will be left out (e.g. %s); the previous generation stays on disk until "
                    "garbage collection", len(dropped), printable_path(dropped[0]))


def _keyword_index_needs_writing(live: LiveState) -> str:
    """Why the live generation's keyword index must be written again ("" when it is fine)."""
    problem = keyword_index_problem(live.paths, live.manifest)
    if problem:
        log.warning("%s — writing it again from the catalog", problem)
    return problem


def run_ingest(settings: IngestConfig, paths: Sequence[Path], options: IngestOptions | None = None,
               embedder_factory: Callable[[], "Embedder"] | None = None,
               keyword_builder: KeywordBuilder | None = None) -> IngestReport:
    """Bring the knowledge base at ``settings.kb_path`` in line with the files under ``paths``.

    Raises KnowledgeBaseLockedError when another ingest holds the lock, KnowledgeBaseError when the base is damaged
    or was built by another embedder (``options.rebuild`` starts over). Failed files are in the report.
    """
    options = options or IngestOptions()
    kb_dir = settings.kb_path
    started = time.perf_counter()
    report = IngestReport(kb_dir=str(kb_dir), dry_run=options.dry_run)
    lock = WriterLock(kb_dir)
    try:
        if not options.dry_run:
            lock.acquire()
        try:
            _run_locked(settings, paths, options, embedder_factory, keyword_builder, report)
        finally:
            lock.release()
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        # A full disk or a permission problem is neither damage nor a bug: say so in one line.
        problem = describe_os_problem(exc, kb_dir)
        if problem is None:
            raise
        raise KnowledgeBaseWriteError(problem) from exc
    finally:
        report.seconds = time.perf_counter() - started
    return report


def _run_locked(settings: IngestConfig, paths: Sequence[Path], options: IngestOptions,
                embedder_factory: Callable[[], "Embedder"] | None, keyword_builder: KeywordBuilder | None,
                report: IngestReport) -> None:
    kb_dir = settings.kb_path
    if not options.dry_run:
        if not options.rebuild and (notice := repair_pointer(kb_dir)):
            log.warning(notice)
        for name in clean_leftovers(kb_dir):
            log.info("removed %s left by an interrupted ingest", name)
    work = _prepare(settings, paths, options, report)
    if options.rebuild:
        _warn_rebuild_drops(kb_dir, work.plan)
    live = None if options.rebuild else live_state(kb_dir)  # a rebuild ignores (even a damaged) base
    if options.dry_run:
        report.files_added = sum(len(c.sources) for c in work.contents) + len(work.duplicates)
        report.files_removed = len(work.plan.removed)
        report.chunks_added = len(work.texts)
        report.generation = live.name if live else ""
        return
    if live is not None and not work.has_changes and not _keyword_index_needs_writing(live):
        report.generation = live.name
        report.chunks_total = live.manifest.n_chunks
        report.documents_total = live.manifest.n_documents
    else:
        # The model loads only when there is something to embed or a new base to label with its name.
        embedder = None
        if work.texts or live is None:
            embedder = (embedder_factory or (lambda: _default_embedder(settings)))()
        if embedder is not None:
            name, dimension = embedder.name, embedder.dimension
        else:  # only removals, metadata changes or a keyword index to write again: keep the base's embedder
            name, dimension = live.manifest.embedder, live.manifest.dimension
        _write_generation(settings, options, work, embedder, name, dimension,
                          keyword_builder or _default_keyword_builder(settings), report)
    _collect_garbage(kb_dir, settings.index)
