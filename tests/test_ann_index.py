"""ingest/store/ann_index.py: every index type answers with chunk ids, removes ids, and keeps its search parameters."""

from __future__ import annotations

import logging

import faiss
import numpy as np
import pytest

from app.config import IndexSettings
from ingest.store import ann_index
from ingest.store.ann_index import (
    apply_search_params,
    build_index,
    choose_index_type,
    index_type_of,
    ivf_nlist,
    load_index,
    remove_ids,
    save_index,
    to_device,
)

DIM = 32


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    """4,000 unit vectors in 40 clusters, with ids far from their positions (so id mapping is tested)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, DIM))
    x = centres[rng.integers(0, 40, 4000)] + 0.3 * rng.normal(size=(4000, DIM))
    x = x.astype(np.float32)
    faiss.normalize_L2(x)
    ids = np.arange(4000, dtype=np.int64) * 7 + 1000
    return x, ids


def small_settings(**kw: object) -> IndexSettings:
    # ivfpq_m must divide DIM; nprobe high enough that IVF is near-exact on this small set.
    return IndexSettings(**{"ivfpq_m": 8, "ivf_nprobe": 32, **kw})


def test_auto_picks_flat_below_threshold_and_ann_type_above() -> None:
    s = IndexSettings(index_type="auto", ann_type="hnsw", ann_threshold=1000)
    assert choose_index_type(999, s) == "flat"
    assert choose_index_type(1000, s) == "hnsw"
    assert choose_index_type(10, IndexSettings(index_type="ivfpq")) == "ivfpq"


def test_nlist_follows_sqrt_rule_and_is_capped_by_data() -> None:
    assert ivf_nlist(1_000_000, IndexSettings(ivf_nlist_factor=4.0)) == 4000
    assert ivf_nlist(1_000_000, IndexSettings(ivf_nlist=1234)) == 1234
    assert ivf_nlist(390, IndexSettings(ivf_nlist_factor=4.0)) == 10
    assert ivf_nlist(5, IndexSettings()) == 1


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_each_type_finds_vectors_by_chunk_id(kind: str, clustered: tuple[np.ndarray, np.ndarray]) -> None:
    x, ids = clustered
    index = build_index(x, ids, small_settings(index_type=kind))
    assert index_type_of(index) == kind
    assert index.ntotal == len(x)
    _, found = index.search(x[:200], 1)
    hit_rate = float(np.mean(found[:, 0] == ids[:200]))
    # PQ codes are lossy: the query's own vector need not be the top hit, but ids must be real chunk ids.
    assert hit_rate >= (0.5 if kind == "ivfpq" else 0.97)
    assert set(found[:, 0]) <= set(ids)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_removed_ids_are_never_returned(kind: str, clustered: tuple[np.ndarray, np.ndarray]) -> None:
    x, ids = clustered
    settings = small_settings(index_type=kind)
    index = build_index(x, ids, settings)
    gone = ids[:100]
    index = remove_ids(index, gone, settings)
    assert index.ntotal == len(x) - 100
    assert index_type_of(index) == kind
    _, found = index.search(x[:100], 10)
    assert not set(found.ravel()) & set(gone)
    _, kept = index.search(x[100:200], 1)
    assert np.mean(kept[:, 0] == ids[100:200]) >= (0.5 if kind == "ivfpq" else 0.97)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_search_params_are_applied_on_load(kind: str, clustered: tuple[np.ndarray, np.ndarray], tmp_path) -> None:
    x, ids = clustered
    index = build_index(x, ids, small_settings(index_type=kind))
    path = tmp_path / "index.faiss"
    save_index(index, path)
    loaded = load_index(path, small_settings(ivf_nprobe=3, hnsw_ef_search=77))
    inner = faiss.downcast_index(faiss.downcast_index(loaded).index) if kind == "hnsw" else faiss.downcast_index(loaded)
    if kind == "hnsw":
        assert inner.hnsw.efSearch == 77
    else:
        assert inner.nprobe == 3
    assert loaded.ntotal == index.ntotal
    _, found = loaded.search(x[:50], 1)
    assert np.mean(found[:, 0] == ids[:50]) >= 0.9


def test_nprobe_is_clamped_to_nlist(clustered: tuple[np.ndarray, np.ndarray]) -> None:
    x, ids = clustered
    index = build_index(x, ids, small_settings(index_type="ivf", ivf_nlist=8))
    apply_search_params(index, small_settings(ivf_nprobe=500))
    assert faiss.downcast_index(index).nprobe == 8


def test_ivfpq_on_too_few_vectors_builds_ivf_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    x = np.eye(DIM, dtype=np.float32).repeat(10, axis=0)
    with caplog.at_level(logging.WARNING, logger=ann_index.__name__):
        index = build_index(x, np.arange(len(x)), small_settings(index_type="ivfpq"))
    assert index_type_of(index) == "ivf"
    assert "IVF-PQ needs" in caplog.text


def test_cuda_without_faiss_gpu_falls_back_to_cpu_with_a_message(
        clustered: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture) -> None:
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is present: the fallback path does not apply")
    x, ids = clustered
    index = build_index(x[:100], ids[:100], IndexSettings(index_type="flat"))
    with caplog.at_level(logging.WARNING, logger=ann_index.__name__):
        same = to_device(index, IndexSettings(device="cuda"))
    assert same is index
    assert "searching on the CPU" in caplog.text


def test_vectors_and_ids_must_match() -> None:
    with pytest.raises(ValueError, match="do not match"):
        build_index(np.zeros((3, DIM), np.float32), np.arange(2), IndexSettings())
