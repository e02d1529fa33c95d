"""Rerankers: rescore a small candidate pool of passages against the query.

- ``CrossEncoderReranker``: any sentence-transformers CrossEncoder (bge-reranker, ms-marco models ...) by path or
  hub name, for users who have one.
- ``MaxSimReranker``: the offline default needs no extra weights: ColBERT-style late interaction over the
  embedder's contextual token vectors, score = mean over query tokens of the best cosine against passage tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ingest.embedder import Embedder

MAXSIM = "maxsim"


class Reranker(Protocol):
    name: str

    def score(self, query: str, passages: list[str]) -> list[float]:
        """One relevance score per passage, higher is better, in the passages' order."""
        ...


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def maxsim(query_tokens: np.ndarray, passage_tokens: np.ndarray) -> float:
    """Mean over query token vectors of the maximum cosine with any passage token vector."""
    if len(query_tokens) == 0 or len(passage_tokens) == 0:
        return 0.0
    similarity = _unit_rows(query_tokens) @ _unit_rows(passage_tokens).T
    return float(similarity.max(axis=1).mean())


class MaxSimReranker:
    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.name = f"maxsim:{embedder.name}"

    def score(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        query_tokens = self.embedder.token_embeddings([query], is_query=True)[0]
        passage_tokens = self.embedder.token_embeddings(passages, is_query=False)
        return [maxsim(query_tokens, tokens) for tokens in passage_tokens]


class CrossEncoderReranker:
    def __init__(self, model: str, device: str = "cpu", batch_size: int = 16):
        from sentence_transformers import CrossEncoder

        self.name = model
        self.batch_size = batch_size
        self._model = CrossEncoder(model, device=device)

    def score(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        scores = self._model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                     show_progress_bar=False)
        return [float(s) for s in np.asarray(scores).reshape(len(passages), -1)[:, -1]]


def build_reranker(model: str, embedder: Embedder, device: str = "cpu", batch_size: int = 16) -> Reranker:
    """``"maxsim"`` → late interaction over ``embedder``; anything else → a CrossEncoder of that name/path."""
    if model == MAXSIM:
        return MaxSimReranker(embedder)
    return CrossEncoderReranker(model, device=device, batch_size=batch_size)
