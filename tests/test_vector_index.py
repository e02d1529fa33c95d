"""The store's FAISS layer: ids are chunk ids, removal, save/load, damaged files, type changes, device fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np
import pytest

from app.config import IndexSettings
from ingest.store.ann_index import save_index, to_device
from ingest.store.vector_index import (
    VectorIndexError,
    add_vectors,
    add_vectors_on_device,
    create_index,
    gpu_available,
    index_ids,
    index_type,
    load_index,
    needs_rebuild,
    remove_vectors,
    stored_vectors,
)


def _vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    faiss.normalize_L2(vectors)
    return vectors


def test_search_answers_with_chunk_ids_and_removal_drops_them() -> None:
    vectors = _vectors(6)
    index = create_index(vectors[:4], [10, 11, 12, 13], IndexSettings())
    add_vectors(index, [20, 21], vectors[4:])
    _, found = index.search(vectors[[1, 5]], 1)
    assert found[:, 0].tolist() == [11, 21]
    index = remove_vectors(index, [11, 20], IndexSettings())
    assert sorted(index_ids(index).tolist()) == [10, 12, 13, 21]
    _, found = index.search(vectors[[1]], 4)
    assert 11 not in found[0].tolist()


def test_wrong_shape_is_refused() -> None:
    index = create_index(_vectors(2), [1, 2], IndexSettings())
    with pytest.raises(VectorIndexError, match="shape"):
        add_vectors(index, [3], _vectors(1, dim=8))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    vectors = _vectors(20)
    index = create_index(vectors, list(range(100, 120)), IndexSettings())
    save_index(index, tmp_path / "index.faiss")
    loaded = load_index(tmp_path / "index.faiss", IndexSettings())
    assert sorted(index_ids(loaded).tolist()) == list(range(100, 120))
    assert np.array_equal(loaded.search(vectors[:3], 5)[1], index.search(vectors[:3], 5)[1])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_index_file_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "index.faiss"
    save_index(create_index(_vectors(50), list(range(50)), IndexSettings()), path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00junk" * 40, "empty": b""}[damage])
    with pytest.raises(VectorIndexError, match="index.faiss: not a readable FAISS index"):
        load_index(path, IndexSettings())
    with pytest.raises(VectorIndexError, match="missing"):
        load_index(tmp_path / "absent.faiss", IndexSettings())


def test_outgrowing_flat_asks_for_another_type_and_vectors_carry_over() -> None:
    settings = IndexSettings(index_type="auto", ann_type="ivf", ann_threshold=100)
    vectors = _vectors(120)
    index = create_index(vectors[:50], list(range(50)), settings)
    assert index_type(index) == "flat" and not needs_rebuild(index, 50, settings)
    add_vectors(index, list(range(50, 120)), vectors[50:])
    assert needs_rebuild(index, 120, settings)
    ids, kept = stored_vectors(index)
    rebuilt = create_index(kept, ids, settings)
    assert index_type(rebuilt) == "ivf"
    assert sorted(index_ids(rebuilt).tolist()) == list(range(120))
    ids2, kept2 = stored_vectors(rebuilt)
    order = np.argsort(ids2)
    assert np.allclose(kept2[order], vectors)


def test_cuda_without_a_gpu_falls_back_to_cpu_with_a_message(caplog: pytest.LogCaptureFixture) -> None:
    if gpu_available():
        pytest.skip("a GPU is present: the fallback does not apply")
    index = create_index(_vectors(5), list(range(5)), IndexSettings())
    with caplog.at_level(logging.WARNING):
        moved = to_device(index, IndexSettings(device="cuda"))
    assert moved is index
    assert "cuda" in caplog.text.lower() and "cpu" in caplog.text.lower()


@pytest.mark.skipif(not gpu_available(), reason="needs faiss-gpu and a GPU")
def test_gpu_index_searches_like_the_cpu_one_and_saves_as_cpu(tmp_path: Path) -> None:
    vectors = _vectors(200)
    index = create_index(vectors, list(range(1000, 1200)), IndexSettings())
    gpu = to_device(index, IndexSettings(device="cuda"))
    assert np.array_equal(gpu.search(vectors[:5], 3)[1], index.search(vectors[:5], 3)[1])
    save_index(gpu, tmp_path / "index.faiss")
    assert sorted(index_ids(load_index(tmp_path / "index.faiss", IndexSettings())).tolist()) == list(range(1000, 1200))


def test_adding_on_cuda_returns_a_cpu_index_either_way(tmp_path: Path) -> None:
    vectors = _vectors(10)
    index = create_index(vectors[:5], list(range(5)), IndexSettings())
    index = add_vectors_on_device(index, list(range(5, 10)), vectors[5:], IndexSettings(device="cuda"))
    assert sorted(index_ids(index).tolist()) == list(range(10))
    save_index(index, tmp_path / "index.faiss")  # a GPU index could not be written
    assert load_index(tmp_path / "index.faiss", IndexSettings()).ntotal == 10
