"""Read-only snapshot of a knowledge base: the generation named by CURRENT when it was opened.

Readers never take the writer's lock: generations are immutable once committed, and a new ingest writes a new
generation and flips CURRENT, so an open KnowledgeBase keeps seeing the same consistent data.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import faiss
import numpy as np

from ingest.records import Chunk, DocumentRecord
from ingest.settings import IndexSettings
from ingest.store.ann_index import to_device
from ingest.store.catalog import Catalog, CatalogError
from ingest.store.dense_search import dense_search
from ingest.store.kb_layout import (
    CATALOG_FILE,
    CURRENT_FILE,
    INDEX_FILE,
    KEYWORD_DIR,
    GenerationPaths,
    committed_generations,
    generation_paths,
    generations_dir,
    newer_generations,
    pending_commits,
    pointer_kind_problem,
    read_current,
    read_pointer,
)
from ingest.store.keyword_index import (
    KeywordIndex,
    KeywordIndexError,
    build_keyword_index,
)
from ingest.store.manifest import Manifest, ManifestError, read_manifest
from ingest.store.store_protocol import Ranking, StoreInfo
from ingest.store.store_files import (
    StoreFileError,
    permission_message,
    verify_file,
    verify_files,
)
from ingest.store.vector_index import VectorIndexError, load_index

_OPEN_ATTEMPTS = 3
log = logging.getLogger(__name__)


class KnowledgeBaseError(Exception):
    """The knowledge base is missing, damaged, unreadable, or was built by another embedder."""


class KnowledgeBaseMissingError(KnowledgeBaseError):
    """There is no knowledge base in the folder yet (nothing was ever committed there)."""


# What to do about a file that cannot be derived again from the rest of the base.
REPAIR_HINT = ("restore it from a backup, or rebuild with `python -m ingest --rebuild FOLDER...` naming every "
               "folder you ingested (nothing was deleted)")


@dataclass
class LiveGeneration:
    """The generation to read, and a notice when CURRENT was damaged and the newest complete one was chosen."""

    name: str
    notice: str = ""


def damaged_message(kb_dir: Path, exc: BaseException) -> str:
    """One line for a store file that cannot be used: permission problems as such, damage with the fix."""
    text = str(exc)
    if text.startswith("permission denied") or isinstance(exc.__cause__, PermissionError):
        return text if text.startswith("permission denied") else permission_message(kb_dir, "read")
    return f"knowledge base {kb_dir} is damaged: {text}; {REPAIR_HINT}"


def check_generation_files(kb_dir: Path, paths: GenerationPaths) -> Manifest:
    """The generation's manifest, once its vector index and catalog are readable and match their checksums
    (without loading them); KnowledgeBaseError naming the file and the fix otherwise."""
    try:
        manifest = read_manifest(paths.manifest)
        for name in (INDEX_FILE, CATALOG_FILE):
            verify_file(paths.root / name, manifest.checksums.get(name))
    except (ManifestError, StoreFileError) as exc:
        raise KnowledgeBaseError(damaged_message(kb_dir, exc)) from exc
    return manifest


def verify_generation(kb_dir: Path, paths: GenerationPaths,
                      index_settings: IndexSettings) -> tuple[Manifest, faiss.Index, Catalog]:
    """Load a generation's manifest, vector index and catalog, each checked against the checksum its manifest
    recorded, and check that they agree. Raises KnowledgeBaseError naming the file and the fix."""
    manifest = check_generation_files(kb_dir, paths)
    try:
        index = load_index(paths.index, index_settings)
        catalog = Catalog.open_readonly(paths.catalog)
    except (ManifestError, StoreFileError, VectorIndexError, CatalogError) as exc:
        raise KnowledgeBaseError(damaged_message(kb_dir, exc)) from exc
    try:
        check_agreement(manifest, index, catalog)
    except KnowledgeBaseError:
        catalog.close()
        raise
    return manifest, index, catalog


def _newest_verified(kb_dir: Path, candidates: list[str],
                     index_settings: IndexSettings) -> tuple[str | None, list[str]]:
    """The first of ``candidates`` (newest first) that verifies, and why each one before it did not."""
    reasons = []
    for candidate in candidates:
        try:
            _, _, catalog = verify_generation(kb_dir, generation_paths(kb_dir, candidate), index_settings)
        except KnowledgeBaseError as exc:
            reasons.append(f"{candidate}: {exc}")
            continue
        catalog.close()
        return candidate, reasons
    return None, reasons


def _set_back_pointer(kb_dir: Path, name: str, index_settings: IndexSettings) -> LiveGeneration | None:
    """When a valid CURRENT names an older generation than committed ones (a restored backup, a sync tool, a hand
    edit — not a commit in progress, whose next CURRENT is announced beside it), the newest of those that verifies,
    with a notice; None when there is nothing newer, or CURRENT moved meanwhile (the caller looks again)."""
    newer = newer_generations(kb_dir, name)
    if not newer:
        return None
    pending = pending_commits(kb_dir)
    newer = [g for g in newer if g not in pending]
    # Read after the announcements: a commit flips CURRENT and drops its announcement in one rename, so a
    # CURRENT unchanged now means the newer folders listed above were not being committed.
    if not newer or read_current(kb_dir) != name:
        return None
    where = kb_dir / CURRENT_FILE
    chosen, reasons = _newest_verified(kb_dir, newer, index_settings)
    if chosen is None:
        return LiveGeneration(name, f"{where} names {name}, but the newer generation(s) {', '.join(newer)} are "
                                    f"there too and damaged ({reasons[0]}); using {name} as CURRENT says; nothing "
                                    "was deleted")
    return LiveGeneration(chosen, f"{where} names {name}, an older generation than {chosen} (restored from a backup, "
                                  f"synced or edited?); using {chosen}, the newest complete generation — to go back "
                                  f"to {name}, run `python -m ingest --use-generation {name}`; nothing was deleted")


def resolve_live(kb_dir: Path, index_settings: IndexSettings | None = None) -> LiveGeneration | None:
    """The generation CURRENT names. When CURRENT is missing, unreadable, garbage, a folder or a link while
    committed generations exist, or names an older one than the newest committed (see ``_set_back_pointer``), the
    newest one that verifies, with a notice. None when nothing was ever committed. Raises KnowledgeBaseError when
    CURRENT is damaged and no generation verifies. Never deletes or changes anything."""
    kb_dir = Path(kb_dir)
    index_settings = index_settings or IndexSettings()
    for _ in range(_OPEN_ATTEMPTS):
        name, problem = read_pointer(kb_dir)
        if name is None:
            break
        set_back = _set_back_pointer(kb_dir, name, index_settings)
        if set_back is not None:
            return set_back
        if read_current(kb_dir) == name:
            return LiveGeneration(name)
    else:
        raise KnowledgeBaseError(f"{kb_dir}: the knowledge base changed too often while opening it; try again")
    candidates = committed_generations(kb_dir)
    if not candidates:
        if problem:
            raise KnowledgeBaseError(f"{problem}, and {generations_dir(kb_dir)} holds no generation; "
                                     f"{_pointer_fix(kb_dir)}")
        return None
    problem = problem or f"{kb_dir / CURRENT_FILE} is missing"
    chosen, reasons = _newest_verified(kb_dir, candidates, index_settings)
    if chosen is not None:
        return LiveGeneration(chosen, f"{problem}; using {chosen}, the newest complete generation")
    raise KnowledgeBaseError(f"{problem}, and no generation in {generations_dir(kb_dir)} is complete "
                             f"({reasons[0]}); nothing was deleted: {REPAIR_HINT}")


def _pointer_fix(kb_dir: Path) -> str:
    """What to do about a damaged CURRENT when no generation can stand in for it."""
    return "move it out of the way and ingest again" if pointer_kind_problem(kb_dir) else REPAIR_HINT


def manifest_info(kb_dir: Path, manifest: Manifest) -> StoreInfo:
    """A folder generation's manifest as the store interface describes a generation."""
    return StoreInfo(backend="folder", location=str(kb_dir), generation=manifest.generation,
                     embedder=manifest.embedder, dimension=manifest.dimension, n_documents=manifest.n_documents,
                     n_chunks=manifest.n_chunks, created_at=manifest.created_at, updated_at=manifest.updated_at,
                     index_type=manifest.index_type)


class KnowledgeBase:
    """The folder store's snapshot (``store_protocol.StoreSnapshot``): one generation's FAISS index, BM25 index
    and catalog, loaded."""

    def __init__(self, kb_dir: Path, manifest: Manifest, index: faiss.Index, catalog: Catalog,
                 keyword_index: KeywordIndex, notices: list[str] | None = None):
        self.kb_dir = kb_dir
        self.manifest = manifest
        self.index = index
        self.keyword_index = keyword_index
        # One line per thing repaired while opening (e.g. a keyword index rebuilt from the catalog), for the faces.
        self.notices = notices or []
        self._catalog = catalog

    @classmethod
    def open(cls, kb_dir: Path, embedder: str | None = None, dimension: int | None = None,
             index_settings: IndexSettings | None = None) -> "KnowledgeBase":
        """Open the live generation. Give ``embedder`` (its name) / ``dimension`` to refuse a base built by
        another embedder; ``index_settings.device="cuda"`` puts the index on a GPU when faiss-gpu sees one."""
        kb_dir = Path(kb_dir)
        index_settings = index_settings or IndexSettings()
        # A writer may commit and delete old generations between our reading CURRENT and opening its files;
        # CURRENT then names a newer generation, so try that one.
        for _ in range(_OPEN_ATTEMPTS):
            live = resolve_live(kb_dir, index_settings)
            if live is None:
                raise KnowledgeBaseMissingError(f"{kb_dir}: no knowledge base here yet (run `python -m ingest` first)")
            try:
                kb = cls._open_generation(kb_dir, live.name, embedder, dimension, index_settings)
            except KnowledgeBaseError:
                if live.notice or read_current(kb_dir) == live.name:
                    raise
                continue
            if live.notice:  # the faces print notices (one line each); not logged as well
                kb.notices.insert(0, live.notice)
            return kb
        raise KnowledgeBaseError(f"{kb_dir}: the knowledge base changed too often while opening it; try again")

    @classmethod
    def _open_generation(cls, kb_dir: Path, name: str, embedder: str | None, dimension: int | None,
                         index_settings: IndexSettings) -> "KnowledgeBase":
        paths = generation_paths(kb_dir, name)
        if not paths.root.is_dir():
            raise KnowledgeBaseError(f"{kb_dir}: CURRENT names generation {name!r}, which does not exist")
        try:
            manifest = read_manifest(paths.manifest)
        except ManifestError as exc:
            raise KnowledgeBaseError(damaged_message(kb_dir, exc)) from exc
        if embedder is not None and manifest.embedder != embedder:
            raise KnowledgeBaseError(
                f"knowledge base {kb_dir} was built with embedder {manifest.embedder!r}, not {embedder!r}: "
                f"use the same embedder, or rebuild it with `python -m ingest --rebuild`")
        if dimension is not None and manifest.dimension != dimension:
            raise KnowledgeBaseError(f"knowledge base {kb_dir} holds {manifest.dimension}-dim vectors, the "
                                     f"embedder makes {dimension}-dim ones: rebuild with `python -m ingest --rebuild`")
        manifest, index, catalog = verify_generation(kb_dir, paths, index_settings)
        try:
            keyword_index, notices = open_keyword_index(paths, manifest, catalog, index_settings)
        except BaseException:
            catalog.close()
            raise
        return cls(kb_dir, manifest, to_device(index, index_settings), catalog, keyword_index, notices)

    @property
    def info(self) -> StoreInfo:
        return manifest_info(self.kb_dir, self.manifest)

    def dense_search(self, vector: np.ndarray, k: int) -> Ranking:
        return dense_search(self.index, vector, k)

    def keyword_search(self, query: str, k: int) -> Ranking:
        return self.keyword_index.search(query, k)

    def get_chunks(self, ids: Sequence[int]) -> list[Chunk]:
        """Chunks for ``ids`` in the same order; unknown ids (e.g. FAISS's -1 padding) are skipped."""
        return self._catalog.get_chunks(ids)

    def neighbours(self, chunk: Chunk, window: int = 1) -> list[Chunk]:
        """Chunks of the same document with ordinal within ``window`` of ``chunk`` (itself included), in order."""
        return self._catalog.neighbours(chunk, window)

    def documents(self) -> list[DocumentRecord]:
        return self._catalog.documents()

    def iter_chunks(self) -> Iterator[Chunk]:
        return self._catalog.iter_chunks()

    def chunk_ids(self) -> list[int]:
        return self._catalog.chunk_ids()

    def close(self) -> None:
        self._catalog.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def keyword_index_problem(paths: GenerationPaths, manifest: Manifest) -> str:
    """Why the generation's stored keyword index cannot be used ("" when it can)."""
    try:
        verify_files(paths.root, manifest.checksums, [KEYWORD_DIR])
        keyword_index = KeywordIndex.load(paths.keyword_dir)
    except (StoreFileError, KeywordIndexError) as exc:
        return str(exc)
    if len(keyword_index) != manifest.n_chunks:
        return f"{paths.keyword_dir}: holds {len(keyword_index)} chunks, the catalog {manifest.n_chunks}"
    return ""


def open_keyword_index(paths: GenerationPaths, manifest: Manifest, catalog: Catalog,
                       settings: IndexSettings) -> tuple[KeywordIndex, list[str]]:
    """The generation's keyword index; a missing or damaged one is derived again from the catalog in memory (the
    next ingest writes it back), with a notice."""
    problem = keyword_index_problem(paths, manifest)
    if not problem:
        return KeywordIndex.load(paths.keyword_dir), []
    chunks = list(catalog.iter_chunks())
    with tempfile.TemporaryDirectory(prefix="docqa-bm25-") as tmp:
        build_keyword_index([c.chunk_id for c in chunks], [c.text for c in chunks], Path(tmp), settings)
        rebuilt = KeywordIndex.load(Path(tmp))
    notice = f"{problem} — rebuilt from the catalog for this session; the next `python -m ingest` writes it back"
    return rebuilt, [notice]


def check_agreement(manifest: Manifest, index: faiss.Index, catalog: Catalog) -> None:
    """Cheap consistency checks run on every open: counts and dimension agree across the three files."""
    where = catalog.path.parent
    try:
        n_catalog = catalog.count_chunks()
        n_documents = catalog.count_documents()
    except Exception as exc:  # sqlite3.DatabaseError from a damaged page deep in the file
        raise KnowledgeBaseError(f"knowledge base generation {where} is damaged: catalog unreadable ({exc})") from exc
    problems = []
    if index.d != manifest.dimension:
        problems.append(f"index dimension {index.d} != manifest {manifest.dimension}")
    if index.ntotal != manifest.n_chunks:
        problems.append(f"index holds {index.ntotal} vectors, manifest says {manifest.n_chunks}")
    if n_catalog != manifest.n_chunks:
        problems.append(f"catalog holds {n_catalog} chunks, manifest says {manifest.n_chunks}")
    if n_documents != manifest.n_documents:
        problems.append(f"catalog holds {n_documents} documents, manifest says {manifest.n_documents}")
    if problems:
        raise KnowledgeBaseError(f"knowledge base generation {where} is inconsistent: {'; '.join(problems)}")
