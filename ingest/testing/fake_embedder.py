"""The one fast stand-in embedder of the tests: hashed character bigrams (or keyword tokens) in a normalised vector.

Not a language model: similar wording gives a high cosine, which is all the logic tests need (ingest machinery,
retrieval fusion, answer checks). ``delay`` seconds per passage batch makes an ingest slow enough to kill mid-way;
``hold_until`` (a path) holds every batch until that file exists. End-to-end tests use the real embedder.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Literal

import numpy as np

from ingest.store.text_tokenizer import tokenize

FAKE_DIM = 32


class FakeEmbedder:
    def __init__(self, dimension: int = FAKE_DIM, *, features: Literal["bigrams", "tokens"] = "bigrams",
                 name: str = "test-hash", delay: float = 0.0, hold_until: Path | None = None):
        self.name = f"{name}:{dimension}"
        self.dimension = dimension
        self.features = features
        self.delay = delay
        self.hold_until = hold_until
        self.calls = 0
        self.passages = 0

    def _units(self, text: str) -> list[str]:
        if self.features == "tokens":
            return tokenize(text)
        return [text[i:i + 2] for i in range(max(len(text) - 1, 1))]

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for unit in self._units(text):
            digest = hashlib.blake2b(unit.encode("utf-8"), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dimension] += 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-9)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.passages += len(texts)
        if self.delay:
            time.sleep(self.delay)
        deadline = time.monotonic() + 300
        while self.hold_until is not None and not self.hold_until.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.encode_queries(texts)

    def encode_passages_with_tokens(self, texts: list[str],
                                    show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.encode_passages(texts), self.token_embeddings(texts, is_query=False)

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        return [self.encode_queries(list(t) or [" "]) for t in texts]
