"""Passage vectors already computed, keyed by embedder fingerprint + sha256 of the passage text.

Written batch by batch as embedding goes, so an interrupted ingest does not embed finished work again. Lives
beside the generations (not inside one): it is only a cache, any entry can be recomputed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ingest.embedding.compute_dtype import resolve_dtype
from ingest.settings import EmbedderSettings
from ingest.store.text_keyed_sqlite import (
    hash_batches,
    open_store,
    retain_texts,
    text_hash,
)

__all__ = ["EmbeddingCache", "passage_fingerprint", "text_hash"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    embedder  TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector    BLOB NOT NULL,
    PRIMARY KEY (embedder, text_hash)
) WITHOUT ROWID;
"""


def passage_fingerprint(embedder_name: str, dimension: int, s: EmbedderSettings) -> str:
    """Passage vectors (pooled or per token) depend on the model and on how passages are prepared, so all of it
    keys the embedding cache and the token-vector store."""
    return (f"{embedder_name}|{dimension}|{s.passage_prefix}|{s.max_seq_length}"
            f"|{resolve_dtype(s.dtype, s.device)}")


class EmbeddingCache:
    """Get/put float32 vectors for one embedder fingerprint (name, dimension and passage settings)."""

    def __init__(self, path: Path, embedder_key: str, dimension: int):
        self._conn = open_store(path, _SCHEMA)
        self._key = embedder_key
        self._dimension = dimension

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for those of ``texts`` that have one, keyed by text hash."""
        found: dict[str, np.ndarray] = {}
        for batch, marks in hash_batches(texts):
            rows = self._conn.execute(
                f"SELECT text_hash, vector FROM vectors WHERE embedder = ? AND text_hash IN ({marks})",
                (self._key, *batch))
            for digest, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self._dimension,):
                    found[digest] = vector
        return found

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one finished batch durably (committed before returning)."""
        rows = [(self._key, text_hash(t), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                for t, v in zip(texts, vectors)]
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO vectors (embedder, text_hash, vector) VALUES (?, ?, ?)",
                                   rows)

    def retain(self, texts: Iterable[str]) -> int:
        """Forget every vector except those of ``texts`` (the live knowledge base's passages), so the cache does
        not grow without bound as documents change; returns how many were dropped."""
        return retain_texts(self._conn, "vectors", self._key, texts)

    def close(self) -> None:
        self._conn.close()
