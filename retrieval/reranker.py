"""Rerankers: rescore a small candidate pool of passages against the query.

- ``CrossEncoderReranker``: any sentence-transformers CrossEncoder (bge-reranker, ms-marco models ...) by path or
  hub name, for users who have one.
- ``MaxSimReranker``: the offline default needs no extra weights: ColBERT-style late interaction over the
  embedder's contextual token vectors, score = mean over query tokens of the best cosine against passage tokens.
  Passages' token vectors come from the store the ingest filled (``ingest/store/token_store.py``); only passages not
  in it are run through the encoder at query time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from ingest.store.text_keyed_sqlite import text_hash
from retrieval.settings import MAXSIM

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder
    from ingest.store.token_store import TokenVectorStore



class Reranker(Protocol):
    name: str

    def score(self, query: str, passages: list[str]) -> list[float]:
        """One relevance score per passage, higher is better, in the passages' order."""
        ...


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def maxsim_scores(query_tokens: np.ndarray, passages: list[np.ndarray]) -> list[float]:
    """Per passage: the mean over query token vectors of their best cosine with any of the passage's token
    vectors; one matrix product for all passages."""
    lengths = [len(p) for p in passages]
    if len(query_tokens) == 0 or not any(lengths):
        return [0.0] * len(passages)
    similarity = _unit_rows(query_tokens) @ _unit_rows(np.concatenate([p for p in passages if len(p)])).T
    starts = np.cumsum([0] + [n for n in lengths if n])[:-1]
    best = iter(np.maximum.reduceat(similarity, starts, axis=1).mean(axis=0))
    return [float(next(best)) if n else 0.0 for n in lengths]


class MaxSimReranker:
    def __init__(self, embedder: Embedder, token_store: TokenVectorStore | None = None):
        self.embedder = embedder
        self.token_store = token_store
        self.name = f"maxsim:{embedder.name}"

    def _passage_tokens(self, passages: list[str]) -> list[np.ndarray]:
        stored = self.token_store.get_many(passages) if self.token_store is not None else {}
        hashes = [text_hash(p) for p in passages]
        missing = list(dict.fromkeys(p for p, h in zip(passages, hashes) if h not in stored))
        if missing:
            stored.update(zip((text_hash(p) for p in missing),
                              self.embedder.token_embeddings(missing, is_query=False)))
        return [stored[h] for h in hashes]

    def score(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        query_tokens = self.embedder.token_embeddings([query], is_query=True)[0]
        return maxsim_scores(query_tokens, self._passage_tokens(passages))


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


def build_reranker(model: str, embedder: Embedder, device: str = "cpu", batch_size: int = 16,
                   token_store: TokenVectorStore | None = None) -> Reranker:
    """``"maxsim"`` → late interaction over ``embedder`` (passages' token vectors from ``token_store`` where it
    has them); anything else → a CrossEncoder of that name/path."""
    if model == MAXSIM:
        return MaxSimReranker(embedder, token_store)
    return CrossEncoderReranker(model, device=device, batch_size=batch_size)
