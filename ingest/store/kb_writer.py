"""Writing a knowledge base: a new generation built beside the live one, then committed atomically.

The writer (holding the lock) copies the live catalog and index into ``generations/.incomplete-<name>``, applies
the changes there, fsyncs everything, renames the folder to ``generations/<name>`` and finally replaces CURRENT.
Until that last ``os.replace`` the previous generation is what every reader sees, so a crash or kill at any
moment leaves a usable, consistent knowledge base; the next writer deletes what an interrupted one left behind.
The next CURRENT is written (as ``CURRENT.tmp-<pid>``) before the folder is renamed, so a committed folder newer
than CURRENT is known to be a commit cut off before its flip only while that file names it; without one, CURRENT
was set back (a restored backup, a sync tool, a hand edit) and the newer generations are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import faiss
import numpy as np

from ingest.settings import IndexSettings
from ingest.store.ann_index import save_index
from ingest.store.catalog import Catalog, CatalogError
from ingest.store.kb_layout import (
    CURRENT_FILE,
    INCOMPLETE_PREFIX,
    MANIFEST_FILE,
    PENDING_CURRENT_PREFIX,
    GenerationPaths,
    announce_commit,
    fsync_dir,
    generation_name,
    generation_number,
    generation_paths,
    generations_dir,
    pending_commits,
    pointer_kind_problem,
    read_current,
    write_current,
)
from ingest.store.knowledge_base import (
    KnowledgeBaseError,
    damaged_message,
    resolve_live,
    verify_generation,
)
from ingest.store.manifest import Manifest, ManifestError, read_manifest, write_manifest
from ingest.store.store_files import tree_checksums
from ingest.store.vector_index import (
    VectorIndexError,
    add_vectors_on_device,
    create_index,
    index_ids,
    index_type,
    needs_rebuild,
    remove_vectors,
    stored_vectors,
)

log = logging.getLogger(__name__)

# build_keyword_index(ids, texts, out_dir): writes the BM25 index of a generation.
KeywordBuilder = Callable[[Sequence[int], Sequence[str], Path], None]


@dataclass
class LiveState:
    """What the live generation holds, as far as a writer needs to know before changing it."""

    name: str
    manifest: Manifest
    paths: GenerationPaths


def live_state(kb_dir: Path) -> LiveState | None:
    """The live generation's manifest, or None for an empty folder; a damaged manifest is a KnowledgeBaseError.
    A damaged CURRENT is resolved to the newest complete generation (``resolve_live``); nothing is written."""
    live = resolve_live(kb_dir)
    return None if live is None else generation_state(kb_dir, live.name)


def generation_state(kb_dir: Path, name: str) -> LiveState:
    """What a writer needs to know of generation ``name``; KnowledgeBaseError when its manifest is damaged."""
    paths = generation_paths(kb_dir, name)
    try:
        return LiveState(name, read_manifest(paths.manifest), paths)
    except ManifestError as exc:
        raise KnowledgeBaseError(damaged_message(kb_dir, exc)) from exc


def check_pointer_replaceable(kb_dir: Path) -> None:
    """KnowledgeBaseError (with the fix) when a commit could not replace CURRENT: a folder stands in its place."""
    problem = pointer_kind_problem(kb_dir)
    if problem and (kb_dir / CURRENT_FILE).is_dir() and not (kb_dir / CURRENT_FILE).is_symlink():
        raise KnowledgeBaseError(f"{problem}: move it out of the way and run the command again; nothing was changed")


def repair_pointer(kb_dir: Path) -> str:
    """Under the writer lock: when CURRENT is damaged or set back to an older generation, point it at the newest
    complete generation and return the notice ("" when CURRENT was fine or nothing was ever committed). Raises
    KnowledgeBaseError when no generation is complete or a folder stands where CURRENT belongs. Deletes nothing."""
    check_pointer_replaceable(kb_dir)
    live = resolve_live(kb_dir)
    if live is None or not live.notice:
        return ""
    if read_current(kb_dir) == live.name:  # the newer generations are damaged: CURRENT stays as it is
        return live.notice
    write_current(kb_dir, live.name)
    return f"{live.notice} (CURRENT now names it)"


def clean_leftovers(kb_dir: Path) -> list[str]:
    """Delete what interrupted writers left: incomplete generations, committed-but-never-live ones, temp files.

    Call only while holding the writer lock. A committed generation newer than a valid CURRENT is removed only when
    an announced next CURRENT names it (a commit cut off between renaming its folder and flipping CURRENT); one
    that CURRENT was merely set back from stays. With a damaged CURRENT no committed generation is touched.
    Returns the names removed.
    """
    removed: list[str] = []
    gens = generations_dir(kb_dir)
    live = read_current(kb_dir)
    live_number = generation_number(live) if live else None
    never_flipped = pending_commits(kb_dir)
    if gens.is_dir():
        for entry in gens.iterdir():
            number = generation_number(entry.name)
            unflipped = (number is not None and live_number is not None and number > live_number
                         and entry.name in never_flipped)
            if entry.name.startswith(INCOMPLETE_PREFIX) or unflipped:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
    for tmp in kb_dir.glob(f"{PENDING_CURRENT_PREFIX}*"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp.name)
    return removed


def collect_garbage(kb_dir: Path, keep: int, grace_seconds: float = 0.0) -> list[str]:
    """Delete generations older than the live one beyond the ``keep`` newest, once they have been superseded for
    ``grace_seconds`` (a reader may have read CURRENT just before the flip and still be opening one)."""
    live = read_current(kb_dir)
    live_number = generation_number(live) if live else None
    if live_number is None or not generations_dir(kb_dir).is_dir():
        return []
    committed = sorted((n, e) for e in generations_dir(kb_dir).iterdir()
                       if (n := generation_number(e.name)) is not None and n <= live_number)
    older = committed[:-1]
    doomed = []
    now = time.time()
    for position, (_, entry) in enumerate(older[:max(0, len(older) - max(keep, 0))]):
        successor = committed[position + 1][1]
        try:
            superseded_at = (successor / MANIFEST_FILE).stat().st_mtime
        except FileNotFoundError:
            superseded_at = now
        if now - superseded_at >= grace_seconds:
            shutil.rmtree(entry, ignore_errors=True)
            doomed.append(entry.name)
    return doomed


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for filename in filenames:
            fd = os.open(os.path.join(dirpath, filename), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


class GenerationWriter:
    """One new generation in the making. Change ``catalog`` and the vectors, then ``commit()`` or ``abort()``."""

    def __init__(self, kb_dir: Path, name: str, catalog: Catalog, index: faiss.Index | None, embedder: str,
                 dimension: int, settings: IndexSettings, created_at: float):
        self.kb_dir = kb_dir
        self.name = name
        self.paths = GenerationPaths(generations_dir(kb_dir) / f"{INCOMPLETE_PREFIX}{name}")
        self.catalog = catalog
        self.embedder = embedder
        self.dimension = dimension
        self.settings = settings
        self._index = index
        self._created_at = created_at
        self._pending_ids: list[int] = []
        self._pending_vectors: list[np.ndarray] = []
        self._removed_ids: list[int] = []

    @classmethod
    def start(cls, kb_dir: Path, embedder: str, dimension: int, settings: IndexSettings,
              rebuild: bool = False, source: str | None = None) -> "GenerationWriter":
        """Begin a generation from the live one (or from nothing with ``rebuild``, or from the committed generation
        ``source``). Hold the lock first."""
        if source is not None:
            live = generation_state(kb_dir, source)
        else:
            live = None if rebuild else live_state(kb_dir)
        if live is not None:
            if live.manifest.embedder != embedder or live.manifest.dimension != dimension:
                raise KnowledgeBaseError(
                    f"knowledge base {kb_dir} was built with embedder {live.manifest.embedder!r} "
                    f"({live.manifest.dimension}-dim), not {embedder!r} ({dimension}-dim): rebuild it with --rebuild")
        numbers = [n for e in generations_dir(kb_dir).iterdir() if (n := generation_number(e.name)) is not None] \
            if generations_dir(kb_dir).is_dir() else []
        name = generation_name(max(numbers, default=0) + 1)
        root = generations_dir(kb_dir) / f"{INCOMPLETE_PREFIX}{name}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        target = GenerationPaths(root)
        try:
            if live is not None:
                # Verified (checksums, agreement) before copying: damage must not be carried into a new generation.
                _, index, verified = verify_generation(kb_dir, live.paths, settings)
                verified.close()
                catalog = Catalog.copy(live.paths.catalog, target.catalog)
                created_at = live.manifest.created_at
            else:
                catalog = Catalog.create(target.catalog)
                index, created_at = None, time.time()
        except (CatalogError, VectorIndexError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise KnowledgeBaseError(damaged_message(kb_dir, exc)) from exc
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(kb_dir, name, catalog, index, embedder, dimension, settings, created_at)

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Vectors for chunks just added to ``catalog``; they go into the index at commit."""
        if len(ids):
            self._pending_ids.extend(int(i) for i in ids)
            self._pending_vectors.append(np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dimension))

    def remove(self, ids: Sequence[int]) -> None:
        """Chunk ids already deleted from ``catalog`` whose vectors must go."""
        self._removed_ids.extend(int(i) for i in ids)

    def _final_index(self) -> faiss.Index:
        vectors = (np.concatenate(self._pending_vectors) if self._pending_vectors
                   else np.zeros((0, self.dimension), np.float32))
        if self._index is None:
            return create_index(vectors, self._pending_ids, self.settings)
        # FAISS cannot remove ids on a GPU: remove on the CPU, then add where the settings say.
        index = remove_vectors(self._index, self._removed_ids, self.settings)
        index = add_vectors_on_device(index, self._pending_ids, vectors, self.settings)
        if needs_rebuild(index, index.ntotal, self.settings):
            try:
                ids, all_vectors = stored_vectors(index)
            except VectorIndexError as exc:
                log.warning("keeping the %s index (%s); run with --rebuild to change the index type",
                            index_type(index), exc)
                return index
            index = create_index(all_vectors, ids, self.settings)
        return index

    def commit(self, keyword_builder: KeywordBuilder) -> Manifest:
        """Write index, keyword index and manifest, make them durable, then make this generation live."""
        index = self._final_index()
        catalog_ids = self.catalog.chunk_ids()
        if not np.array_equal(np.sort(index_ids(index)), np.asarray(catalog_ids, dtype=np.int64)):
            raise KnowledgeBaseError("internal error: catalog and vector index disagree; nothing was committed")
        now = time.time()
        manifest = Manifest(embedder=self.embedder, dimension=self.dimension, index_type=index_type(index),
                            n_documents=self.catalog.count_documents(), n_chunks=len(catalog_ids),
                            created_at=self._created_at, updated_at=now, generation=self.name)
        ids, texts = zip(*self.catalog.iter_id_text()) if catalog_ids else ((), ())
        self.catalog.commit()
        self.catalog.close()
        save_index(index, self.paths.index)
        keyword_builder(list(ids), list(texts), self.paths.keyword_dir)
        manifest.checksums = tree_checksums(self.paths.root)
        write_manifest(manifest, self.paths.manifest)
        _fsync_tree(self.paths.root)
        final = generation_paths(self.kb_dir, self.name).root
        announced = announce_commit(self.kb_dir, self.name)
        os.rename(self.paths.root, final)
        fsync_dir(final.parent)
        write_current(self.kb_dir, self.name, announced)
        return manifest

    def abort(self) -> None:
        """Throw the unfinished generation away (the live one is untouched)."""
        try:
            self.catalog.close()
        except Exception:  # already closed by a commit that failed later
            pass
        shutil.rmtree(self.paths.root, ignore_errors=True)
