"""One incremental ingest run: scan → plan → load and chunk → embed (cached) → write a new generation.

Unchanged files are skipped, changed ones replaced, files gone from the ingested folders removed, and content
already stored under another path is not embedded again. A file that cannot be loaded is reported and skipped;
its previously ingested version, if any, stays. Everything is committed at once at the end (see kb_writer).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

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
from ingest.pipeline.excluded_sources import ExcludedSources
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
from ingest.settings import IngestConfig
from ingest.store.folder_store import FolderStore
from ingest.store.kb_layout import EMBEDDING_CACHE_FILE, TOKEN_VECTORS_FILE
from ingest.store.kb_lock import WriterLock
from ingest.store.kb_writer import KeywordBuilder
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.store.store_files import describe_os_problem
from ingest.store.store_protocol import KnowledgeStore, StoreInfo, StoreWriter
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
    follow_links: bool = False  # ingest what symbolic links inside the folders point to, also outside them
    # Catalogued documents (by path) to delete from the base in this run; their paths are then excluded from later
    # scans of their folders until named explicitly (ingest/pipeline/excluded_sources.py).
    remove: Sequence[str] = ()
    # Catalogued documents (by path) to load and chunk again though their file did not change (e.g. after the
    # base's chunk settings changed); their files are scanned whatever ``paths`` holds.
    reload: Sequence[str] = ()


class KnowledgeBaseWriteError(KnowledgeBaseError):
    """The knowledge base cannot be written: the disk is full or permissions forbid it (nothing was changed)."""


class IngestSetupError(Exception):
    """Something the run needs cannot be set up (e.g. the embedding model does not load)."""


class DocumentNotFoundError(LookupError):
    """A document asked to be removed or reloaded is not in the base (already deleted, or never there); nothing
    was changed. The message names the base and the paths."""


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


def _known_documents(store: KnowledgeStore, rebuild: bool) -> dict[str, DocumentRecord]:
    return {} if rebuild else {doc.path: doc for doc in store.live_documents()[1]}


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


def _drop_reloaded(writer: StoreWriter, contents: list[LoadedContent],
                   reloaded: set[str]) -> tuple[list[DocumentRecord], int]:
    """Take out every document holding a content that is being chunked again (its old chunks then go as orphans,
    before the new ones are added under the same content hash); returns those that are not reloaded themselves,
    to be put back over the new chunks, and how many chunks went."""
    hashes = {c.content_hash for c in contents if c.content_hash in reloaded}
    if not hashes:
        return [], 0
    loaded = {source.path for c in contents for source in c.sources}
    holders = [d for d in writer.documents() if d.content_hash in hashes]
    for doc in holders:
        writer.remove_document(doc.path)
    dropped = writer.remove_orphan_contents()
    return [d for d in holders if d.path not in loaded], len(dropped)


def _apply(writer: StoreWriter, plan: IngestPlan, contents: list[LoadedContent],
           duplicates: list[tuple[SourceFile, str]], vectors: dict[str, np.ndarray], report: IngestReport,
           reloaded: set[str] = frozenset()) -> None:
    new_paths = {source.path for source, _ in plan.new}
    sharing, replaced = _drop_reloaded(writer, contents, reloaded)
    # Duplicates first: the stored copy they point to may be a file removed or changed in this same run.
    for source, digest in duplicates:
        stored = writer.document_with_content(digest)
        assert stored is not None, "duplicate of content missing from the catalog"
        writer.put_document(_document(source, digest, stored.n_chunks, stored.title, stored.file_type))
        report.files_duplicate += 1
        report.files_added += source.path in new_paths
        report.files_updated += source.path not in new_paths
    for path in plan.removed:
        writer.remove_document(path)
    for source, previous in plan.touched:
        writer.put_document(_document(source, previous.content_hash, previous.n_chunks, previous.title,
                                      previous.file_type))
    for content in contents:
        rows = [vectors[text_hash(d.text)] for d in content.drafts]
        ids = writer.add_chunks(content.content_hash, content.drafts,
                                np.stack(rows) if rows else np.zeros((0, writer.dimension), np.float32))
        report.chunks_added += len(ids)
        report.files_duplicate += len(content.sources) - 1
        for source in content.sources:
            writer.put_document(_document(source, content.content_hash, len(ids), content.title, content.file_type))
            report.files_added += source.path in new_paths
            report.files_updated += source.path not in new_paths
        for doc in sharing:  # other paths of a reloaded content: same bytes, the new chunks
            if doc.content_hash == content.content_hash:
                writer.put_document(replace(doc, n_chunks=len(ids)))
    orphans = writer.remove_orphan_contents()
    report.chunks_removed = replaced + len(orphans)
    report.files_removed = len(plan.removed)


@dataclass
class PreparedWork:
    """Everything decided before touching the knowledge base: the plan and the loaded, chunked new content."""

    plan: IngestPlan
    contents: list[LoadedContent]
    duplicates: list[tuple[SourceFile, str]]
    # Content hashes of unchanged documents loaded again on request (IngestOptions.reload).
    reloaded: set[str] = field(default_factory=set)

    @property
    def texts(self) -> list[str]:
        return [d.text for c in self.contents for d in c.drafts]

    @property
    def has_changes(self) -> bool:
        return bool(self.contents or self.duplicates or self.plan.touched or self.plan.removed)


def _write_generation(settings: IngestConfig, store: KnowledgeStore, options: IngestOptions, work: PreparedWork,
                      embedder: "Embedder | None", name: str, dimension: int, report: IngestReport) -> None:
    """Embed the new chunks (through the cache), apply every change to a new generation and commit it."""
    kb_dir = settings.kb_path
    writer = store.start_writer(name, dimension, rebuild=options.rebuild)
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
        _apply(writer, work.plan, work.contents, work.duplicates, vectors, report, work.reloaded)
        (options.progress)(IngestProgress(COMMIT, 0, 1))
        committed = writer.commit()
    except BaseException:
        writer.abort()
        for local in (cache, tokens):
            if local is not None:
                local.close()
        raise
    if cache is not None:
        live_texts = store.live_texts()
        for local in (cache, tokens):
            if local is not None:
                try:
                    local.retain(live_texts)
                finally:
                    local.close()
    (options.progress)(IngestProgress(COMMIT, 1, 1))
    report.committed = True
    _report_live(report, committed)


def _remember_exclusions(settings: IngestConfig, options: IngestOptions, work: PreparedWork,
                         report: IngestReport) -> None:
    """After a commit: exclude the documents deleted on request, and forget the exclusion of files named
    explicitly and ingested now."""
    excluded = ExcludedSources(settings.kb_path)
    failed = {f.path for f in report.failures}
    named = [s.path for s, _ in work.plan.new if s.path in excluded and s.path not in failed]
    excluded.update(add=options.remove, forget=named)


def _report_live(report: IngestReport, live: StoreInfo) -> None:
    report.generation = live.generation
    report.chunks_total = live.n_chunks
    report.documents_total = live.n_documents


def _prepare(settings: IngestConfig, store: KnowledgeStore, paths: Sequence[Path], options: IngestOptions,
             report: IngestReport) -> PreparedWork:
    """Scan, compare with the catalog, load and chunk what is new."""
    scan = scan_sources(paths, SUPPORTED_EXTENSIONS, follow_links=options.follow_links)
    for path in scan.undecodable:
        _fail(report, printable_path(path), "file name is not valid UTF-8 (rename the file to ingest it)")
    known = _known_documents(store, options.rebuild)
    _refuse_unknown(store, known, [*options.remove, *options.reload])
    _skip_excluded(scan, ExcludedSources(settings.kb_path), report)
    _report_blind_spots(scan, known, report)
    plan = plan_ingest(scan, known)
    plan.removed = sorted(set(plan.removed) | set(options.remove))
    reloaded = _force_reload(plan, known, options.reload)
    report.files_skipped = len(plan.unchanged) + len(plan.touched)
    known_hashes = {doc.content_hash for doc in known.values()} - reloaded
    contents, duplicates = _load_contents(plan, known_hashes, settings, report, options.progress)
    return PreparedWork(plan, contents, duplicates, reloaded)


def _refuse_unknown(store: KnowledgeStore, known: dict[str, DocumentRecord], paths: Sequence[str]) -> None:
    """DocumentNotFoundError when a document to remove or reload is not in the catalog (two clients deleting the
    same document: the second is told it is gone, checked under the writer lock)."""
    unknown = [p for p in dict.fromkeys(paths) if p not in known]
    if unknown:
        shown = ", ".join(printable_path(p) for p in unknown[:3]) + (" …" if len(unknown) > 3 else "")
        raise DocumentNotFoundError(f"{store.location}: no such document in the knowledge base ({shown}); it was "
                                    "deleted already or never ingested")


def _skip_excluded(scan: ScanResult, excluded: ExcludedSources, report: IngestReport) -> None:
    """Leave out files deleted from the base earlier that were found under a scanned folder; a file named
    itself (a root) is ingested again."""
    if not excluded.paths:
        return
    named = set(scan.roots)
    kept = [f for f in scan.files if f.path not in excluded or f.path in named]
    report.files_excluded = sorted(f.path for f in scan.files if f.path in excluded and f.path not in named)
    scan.files = kept


def _force_reload(plan: IngestPlan, known: dict[str, DocumentRecord], paths: Sequence[str]) -> set[str]:
    """Move the documents to reload from unchanged to changed (a changed one is loaded anyway); returns the
    content hashes whose chunks are replaced."""
    wanted = set(paths)
    if not wanted:
        return set()
    reloaded: set[str] = set()
    for source in [s for s in plan.unchanged if s.path in wanted]:
        plan.unchanged.remove(source)
        plan.changed.append((source, known[source.path].content_hash))
        reloaded.add(known[source.path].content_hash)
    for source, previous in [t for t in plan.touched if t[0].path in wanted]:
        plan.touched.remove((source, previous))
        plan.changed.append((source, previous.content_hash))
        reloaded.add(previous.content_hash)
    return reloaded


def _report_blind_spots(scan: ScanResult, known: dict[str, DocumentRecord], report: IngestReport) -> None:
    """One line per given path that is missing, per folder that cannot be listed and per link leading out of the
    folder, saying that the documents ingested from there are kept (the plan removes nothing under them)."""
    blind = [(r, "no such file or folder") for r in scan.missing_roots] + sorted(scan.unreadable.items())
    blind += [(link, f"a symbolic link to {printable_path(target)}, outside the folder being ingested: not followed "
                     "(--follow-links follows it)") for link, target in sorted(scan.outside.items())]
    for root, reason in blind:
        kept = sum(1 for path in known if under_roots(path, [root]))
        detail = f"; the {kept} document(s) ingested from it are kept" if kept else ""
        _fail(report, printable_path(root), f"{reason}{detail}")


def _warn_rebuild_drops(store: KnowledgeStore, plan: IngestPlan) -> None:
    """A rebuild keeps only what is under the paths given: say how many documents of the old base that drops."""
    try:
        known = {doc.path for doc in store.live_documents()[1]}
    except KnowledgeBaseError:
        return  # a damaged base: what it held cannot be counted
    kept = {source.path for source in plan.unchanged} | {s.path for s, _ in plan.new + plan.changed}
    dropped = sorted(known - kept)
    if dropped:
        log.warning("--rebuild keeps only the paths given: %d document(s) of the previous knowledge base are not "
                    "under them and will be left out (e.g. %s); the previous generation stays until "
                    "garbage collection", len(dropped), printable_path(dropped[0]))


def _rewrite_reason(store: KnowledgeStore) -> str:
    """Why the live generation must be written again though nothing changed ("" when it need not)."""
    problem = store.rewrite_reason()
    if problem:
        log.warning("%s — writing it again from the catalog", problem)
    return problem


@contextlib.contextmanager
def _write_errors_as_one_line(kb_dir: Path) -> Iterator[None]:
    """A full disk or a permission problem while writing is neither damage nor a bug: KnowledgeBaseWriteError, whose
    message says so in one line."""
    try:
        yield
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        problem = describe_os_problem(exc, kb_dir)
        if problem is None:
            raise
        raise KnowledgeBaseWriteError(problem) from exc


def use_generation(settings: IngestConfig, name: str, keyword_builder: KeywordBuilder | None = None) -> IngestReport:
    """Make the committed generation ``name`` of the folder base live again, as a new generation with its content
    (so no generation is deleted and CURRENT never points back past a newer one); the usual garbage collection
    follows. Raises KnowledgeBaseError when ``name`` is not a committed generation or does not verify,
    KnowledgeBaseLockedError when another ingest runs."""
    kb_dir = settings.kb_path
    store = FolderStore(kb_dir, settings.index, keyword_builder)
    started = time.perf_counter()
    report = IngestReport(kb_dir=str(kb_dir))
    with _write_errors_as_one_line(kb_dir), WriterLock(kb_dir):
        live = store.restore_generation(name)
        for old in store.collect_garbage():
            log.info("removed old generation %s", old)
    report.committed = True
    _report_live(report, live)
    report.seconds = time.perf_counter() - started
    log.info("%s now holds the content of %s", live.generation, name)
    return report


def run_ingest(settings: IngestConfig, paths: Sequence[Path], options: IngestOptions | None = None,
               embedder_factory: Callable[[], "Embedder"] | None = None,
               keyword_builder: KeywordBuilder | None = None, store: KnowledgeStore | None = None) -> IngestReport:
    """Bring the knowledge base in line with the files under ``paths``: ``store`` (default: the folder store at
    ``settings.kb_path``; the base's folder keeps the writer lock and the local caches whatever the store).

    Raises KnowledgeBaseLockedError when another ingest holds the lock, KnowledgeBaseError when the base is damaged
    or was built by another embedder (``options.rebuild`` starts over). Failed files are in the report.
    """
    options = options or IngestOptions()
    paths = [*paths, *(Path(p) for p in options.reload)]
    kb_dir = settings.kb_path
    store = store or FolderStore(kb_dir, settings.index, keyword_builder)
    started = time.perf_counter()
    report = IngestReport(kb_dir=store.location, dry_run=options.dry_run)
    lock = WriterLock(kb_dir)
    try:
        with _write_errors_as_one_line(kb_dir):
            if not options.dry_run:
                lock.acquire()
            try:
                _run_locked(settings, store, paths, options, embedder_factory, report)
            finally:
                lock.release()
    finally:
        report.seconds = time.perf_counter() - started
    return report


def _run_locked(settings: IngestConfig, store: KnowledgeStore, paths: Sequence[Path], options: IngestOptions,
                embedder_factory: Callable[[], "Embedder"] | None, report: IngestReport) -> None:
    if not options.dry_run:
        for notice in store.prepare_write(rebuild=options.rebuild):
            log.warning(notice)
    work = _prepare(settings, store, paths, options, report)
    if options.rebuild:
        _warn_rebuild_drops(store, work.plan)
    live = None if options.rebuild else store.live_info()  # a rebuild ignores (even a damaged) base
    if options.dry_run:
        report.files_added = sum(len(c.sources) for c in work.contents) + len(work.duplicates)
        report.files_removed = len(work.plan.removed)
        report.chunks_added = len(work.texts)
        report.generation = live.generation if live else ""
        return
    if live is not None and not work.has_changes and not _rewrite_reason(store):
        _report_live(report, live)
    else:
        # The model loads only when there is something to embed or a new base to label with its name.
        embedder = None
        if work.texts or live is None:
            embedder = (embedder_factory or (lambda: _default_embedder(settings)))()
        if embedder is not None:
            name, dimension = embedder.name, embedder.dimension
        else:  # only removals, metadata changes or a keyword index to write again: keep the base's embedder
            name, dimension = live.embedder, live.dimension
        _write_generation(settings, store, options, work, embedder, name, dimension, report)
        _remember_exclusions(settings, options, work, report)
    for name in store.collect_garbage():
        log.info("removed old generation %s", name)
