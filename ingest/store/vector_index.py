"""The knowledge base's FAISS index as the store uses it: create, update by chunk id, check, save and load.

Which index type to build (flat, HNSW, IVF, IVF-PQ) and how, and moving to a GPU, live in ``ingest/store/ann_index.py``;
this module adds what the store needs on top: reading a file with a clear error, listing the ids an index holds
(for the catalog/index agreement check), and deciding when the collection has outgrown its index type.
Saved indexes are always CPU indexes (``faiss.write_index``; no pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from ingest.settings import IndexSettings
from ingest.store import ann_index


class VectorIndexError(Exception):
    """An index file cannot be read, or vectors do not fit the index."""


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def create_index(vectors: np.ndarray, ids: Sequence[int], settings: IndexSettings) -> faiss.Index:
    """A new index of the type ``settings`` choose for this many vectors, holding ``vectors`` under ``ids``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    # A (0, dim) array (a first run where every file failed) stays as it is: numpy cannot reshape it to (0, -1).
    if vectors.ndim != 2:
        vectors = vectors.reshape(len(ids), -1)
    return ann_index.build_index(vectors, np.asarray(ids, dtype=np.int64), settings)


def needs_rebuild(index: faiss.Index, n_total: int, settings: IndexSettings) -> bool:
    """True when the settings would pick another index type for ``n_total`` vectors than ``index`` has."""
    return ann_index.choose_index_type(n_total, settings) != ann_index.index_type_of(index)


def index_type(index: faiss.Index) -> str:
    return ann_index.index_type_of(index)


def add_vectors(index: faiss.Index, ids: Sequence[int], vectors: np.ndarray) -> None:
    if len(ids) == 0:
        return
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.shape != (len(ids), index.d):
        raise VectorIndexError(f"expected vectors of shape ({len(ids)}, {index.d}), got {vectors.shape}")
    index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))


def add_vectors_on_device(index: faiss.Index, ids: Sequence[int], vectors: np.ndarray,
                          settings: IndexSettings) -> faiss.Index:
    """Add on the GPU when ``settings.device == "cuda"`` and one is usable (else on the CPU, with a logged reason);
    returns a CPU index either way, ready to save."""
    moved = ann_index.to_device(index, settings)
    add_vectors(moved, ids, vectors)
    return faiss.index_gpu_to_cpu(moved) if moved is not index else index


def remove_vectors(index: faiss.Index, ids: Sequence[int], settings: IndexSettings) -> faiss.Index:
    """``index`` without ``ids``, removed in one pass (use the returned index: HNSW is rebuilt)."""
    if len(ids) == 0:
        return index
    return ann_index.remove_ids(index, np.asarray(ids, dtype=np.int64), settings)


def index_ids(index: faiss.Index) -> np.ndarray:
    """Every id stored in ``index`` (id-mapped or IVF), unsorted."""
    index = faiss.downcast_index(index)
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    if isinstance(index, faiss.IndexIVF):
        invlists = index.invlists
        parts = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                 for i in range(index.nlist) if invlists.list_size(i)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    raise VectorIndexError(f"cannot list the ids of a {type(index).__name__}")


def stored_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of every vector in an index that keeps them exactly (flat, HNSW, IVF-flat).

    Used to move a collection to another index type; IVF-PQ keeps only lossy codes, so it raises.
    """
    index = faiss.downcast_index(index)
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, (faiss.IndexFlat, faiss.IndexHNSWFlat)):
            vectors = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, index.d), np.float32)
            return index_ids(index), vectors
    if isinstance(index, faiss.IndexIVFFlat):
        ids = index_ids(index)
        index.make_direct_map()
        vectors = np.stack([index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, index.d), np.float32)
        return ids, vectors
    raise VectorIndexError(f"a {type(index).__name__} does not keep its vectors exactly")


def load_index(path: Path, settings: IndexSettings) -> faiss.Index:
    """Read a saved index (on the CPU, search parameters applied); a missing or damaged file is a clear error."""
    if not path.is_file():
        raise VectorIndexError(f"{path}: missing")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise VectorIndexError(f"{path}: not a readable FAISS index ({detail})") from exc
    ann_index.apply_search_params(index, settings)
    return index
