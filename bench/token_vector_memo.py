"""Benchmark-only memo of passage token vectors, so scoring the reranker's quality over hundreds of questions
does not re-encode the same chunks again and again. Rerank latency is measured separately, without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ingest.embedder import Embedder


class PassageTokenMemo:
    """Delegates to an Embedder, remembering ``token_embeddings`` of passages (not of queries) by text."""

    def __init__(self, embedder: Embedder):
        self._embedder = embedder
        self.name = embedder.name
        self.dimension = embedder.dimension
        self._passages: dict[str, np.ndarray] = {}

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._embedder.encode_queries(texts)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._embedder.encode_passages(texts, show_progress)

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        if is_query:
            return self._embedder.token_embeddings(texts, is_query=True)
        missing = list(dict.fromkeys(t for t in texts if t not in self._passages))
        if missing:
            self._passages.update(zip(missing, self._embedder.token_embeddings(missing, is_query=False)))
        return [self._passages[t] for t in texts]
