"""Nearest-neighbour search of a query vector in a folder store's FAISS index."""

from __future__ import annotations

import faiss
import numpy as np


def dense_search(index: faiss.Index, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(chunk id, inner product = cosine for L2-normalised vectors), best first; empty for an empty index."""
    if k <= 0 or index.ntotal == 0:
        return []
    vector = np.ascontiguousarray(query_vector, dtype=np.float32).reshape(1, -1)
    if vector.shape[1] != index.d:
        raise ValueError(f"query vector has dimension {vector.shape[1]}, the index expects {index.d}")
    scores, ids = index.search(vector, min(k, index.ntotal))
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]
