"""Building FAISS indexes by type (flat, HNSW, IVF, IVF-PQ), all keyed by chunk id.

Every index built here answers ``search`` with chunk ids (``add_with_ids``) and uses inner product on
L2-normalised vectors (= cosine). Which type to use is chosen by size ("auto": exact flat search below
``IndexSettings.ann_threshold`` vectors, ``ann_type`` above) or forced by ``IndexSettings.index_type``.
The defaults and the figures behind them are in bench/PERF_RESULTS.md (bench/ann_bench.py).

Removing chunks: flat, IVF and IVF-PQ remove ids in place. HNSW graphs cannot remove nodes, so
``remove_ids`` rebuilds an HNSW index from the vectors it still holds (exact: HNSW keeps full vectors).

Search-time parameters (IVF ``nprobe``, HNSW ``efSearch``) are not stored reliably in the file, so
``apply_search_params`` must be called after ``faiss.read_index``; ``load_index`` does both.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import faiss
import numpy as np

from ingest.settings import IndexSettings

log = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq")
# FAISS k-means warns below 39 training points per centroid; fewer give poor centroids.
MIN_POINTS_PER_CENTROID = 39


class IndexTypeError(ValueError):
    """An unknown index type was configured."""


def choose_index_type(n_vectors: int, settings: IndexSettings) -> str:
    """The index type for a collection of ``n_vectors``: forced by ``index_type`` or chosen by size."""
    wanted = settings.index_type.lower()
    if wanted == "auto":
        wanted = settings.ann_type.lower() if n_vectors >= settings.ann_threshold else "flat"
    if wanted not in INDEX_TYPES:
        raise IndexTypeError(
            f"unknown index type {wanted!r} (IndexSettings.index_type / ann_type): "
            f"use auto or {', '.join(INDEX_TYPES)}")
    return wanted


def ivf_nlist(n_vectors: int, settings: IndexSettings) -> int:
    """Number of IVF lists: ``ivf_nlist`` if set, else ``ivf_nlist_factor * sqrt(N)``, capped so k-means has data."""
    wanted = settings.ivf_nlist or round(settings.ivf_nlist_factor * math.sqrt(max(n_vectors, 1)))
    return max(1, min(wanted, n_vectors // MIN_POINTS_PER_CENTROID))


def _pq_bits(n_train: int) -> int:
    """Bits per PQ code: 8 (256 centroids) when there is data for it, fewer for small collections."""
    return max(0, min(8, int(math.log2(max(n_train, 1) / MIN_POINTS_PER_CENTROID))))


def _training_sample(vectors: np.ndarray, n_centroids: int, settings: IndexSettings) -> np.ndarray:
    """A random subset for k-means: training on all of 1M vectors costs minutes and gains little recall."""
    n_train = min(len(vectors), max(settings.ivf_train_points_per_list * n_centroids, 256 * MIN_POINTS_PER_CENTROID))
    if n_train >= len(vectors):
        return vectors
    rng = np.random.default_rng(settings.train_seed)
    return vectors[np.sort(rng.choice(len(vectors), n_train, replace=False))]


def _empty_index(index_type: str, dim: int, vectors: np.ndarray, settings: IndexSettings) -> faiss.Index:
    metric = faiss.METRIC_INNER_PRODUCT
    if index_type == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if index_type == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, settings.hnsw_m, metric)
        hnsw.hnsw.efConstruction = settings.hnsw_ef_construction
        return faiss.IndexIDMap2(hnsw)
    nlist = ivf_nlist(len(vectors), settings)
    sample = _training_sample(vectors, nlist, settings)
    quantizer = faiss.IndexFlatIP(dim)
    index: faiss.Index
    bits = _pq_bits(len(sample))
    if index_type == "ivfpq" and bits >= 4 and dim % settings.ivfpq_m == 0:
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, settings.ivfpq_m, bits, metric)
    else:
        if index_type == "ivfpq":
            log.warning("IVF-PQ needs %d-dim vectors divisible by ivfpq_m=%d and >= %d vectors; "
                        "building IVF (uncompressed lists) for these %d vectors instead",
                        dim, settings.ivfpq_m, 16 * MIN_POINTS_PER_CENTROID, len(vectors))
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    # Keep quantizer alive as long as the index (the SWIG wrapper does not own it).
    index.own_fields = True
    quantizer.this.disown()
    return index


def build_index(vectors: np.ndarray, ids: np.ndarray, settings: IndexSettings,
                index_type: str | None = None) -> faiss.Index:
    """An index of ``vectors`` (L2-normalised, float32, shape (n, dim)) answering with ``ids`` (int64)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ValueError(f"vectors {vectors.shape} and ids {ids.shape} do not match")
    kind = index_type or choose_index_type(len(vectors), settings)
    index = _empty_index(kind, vectors.shape[1], vectors, settings)
    if len(vectors):
        index.add_with_ids(vectors, ids)
    apply_search_params(index, settings)
    return index


def _inner(index: faiss.Index) -> faiss.Index:
    """The index doing the work, under an id map if there is one."""
    index = faiss.downcast_index(index)
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2)):
        return faiss.downcast_index(index.index)
    return index


def index_type_of(index: faiss.Index) -> str:
    """One of INDEX_TYPES describing ``index`` (for the manifest and for rebuild decisions)."""
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    return "flat"


def apply_search_params(index: faiss.Index, settings: IndexSettings) -> None:
    """Set the search-time accuracy/speed knobs (IVF nprobe, HNSW efSearch) from ``settings``."""
    inner = _inner(index)
    if isinstance(inner, faiss.IndexIVF):
        inner.nprobe = min(settings.ivf_nprobe, inner.nlist)
    elif isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = settings.hnsw_ef_search


def remove_ids(index: faiss.Index, ids: np.ndarray, settings: IndexSettings) -> faiss.Index:
    """``index`` without ``ids``: removed in place, or for HNSW a rebuilt index (returned; use the result)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if index_type_of(index) != "hnsw":
        index.remove_ids(ids)
        return index
    all_ids = faiss.vector_to_array(faiss.downcast_index(index).id_map).astype(np.int64)
    keep = ~np.isin(all_ids, ids)
    # HNSWFlat stores full vectors in insertion order, the same order as the id map.
    vectors = _inner(index).reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
    return build_index(vectors[keep], all_ids[keep], settings, index_type="hnsw")


def to_device(index: faiss.Index, settings: IndexSettings) -> faiss.Index:
    """The index on the configured device: a GPU copy when ``device="cuda"`` and faiss-gpu sees a GPU, else ``index``.

    Falls back to the CPU with a logged reason (faiss-cpu installed, no GPU, or an HNSW index, which FAISS
    cannot move to a GPU).
    """
    if settings.device.lower() != "cuda":
        return index
    if not hasattr(faiss, "StandardGpuResources"):
        log.warning("IndexSettings.device=cuda but this FAISS build has no GPU support (faiss-cpu is installed; "
                    "install faiss-gpu for CUDA 12); searching on the CPU")
        return index
    if faiss.get_num_gpus() == 0:
        log.warning("IndexSettings.device=cuda but FAISS sees no GPU; searching on the CPU")
        return index
    if index_type_of(index) == "hnsw":
        log.warning("FAISS cannot move an HNSW index to a GPU; searching on the CPU (use flat or ivf on GPUs)")
        return index
    resources = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(resources, settings.gpu_id, index)
    gpu_index.referenced_resources = resources  # keep the GPU memory pool alive with the index
    return gpu_index


def to_cpu(index: faiss.Index) -> faiss.Index:
    """A CPU copy of a GPU index (needed before ``faiss.write_index``); CPU indexes are returned as they are."""
    if hasattr(faiss, "index_gpu_to_cpu") and hasattr(faiss, "GpuIndex") and isinstance(
            faiss.downcast_index(index), faiss.GpuIndex):
        return faiss.index_gpu_to_cpu(index)
    return index


def save_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(to_cpu(index), str(path))


def load_index(path: Path, settings: IndexSettings) -> faiss.Index:
    """Read an index written by ``save_index``, set its search parameters and move it to the configured device."""
    index = faiss.read_index(str(path))
    apply_search_params(index, settings)
    return to_device(index, settings)
