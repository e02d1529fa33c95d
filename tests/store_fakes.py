"""A fast deterministic embedder for the store tests (knowledge-base logic, crash and lock tests).

It hashes character bigrams into a normalised vector: not a language model, only a stand-in so the ingest
machinery can be tested in seconds. End-to-end tests use the real embedder.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

FAKE_DIM = 32


class HashEmbedder:
    """Deterministic passage vectors; ``delay`` seconds per batch makes a run slow enough to kill mid-way."""

    def __init__(self, dimension: int = FAKE_DIM, delay: float = 0.0, name: str = "test-hash"):
        self.name = f"{name}:{dimension}"
        self.dimension = dimension
        self.delay = delay
        self.calls = 0
        self.passages = 0

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for i in range(max(len(text) - 1, 1)):
            digest = hashlib.blake2b(text[i:i + 2].encode("utf-8"), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dimension] += 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-9)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.passages += len(texts)
        if self.delay:
            time.sleep(self.delay)
        return self.encode_queries(texts)

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        return [self.encode_queries(list(t) or [" "]) for t in texts]
