"""Passage vectors already computed, keyed by embedder fingerprint + sha256 of the passage text.

Written batch by batch as embedding goes, so an interrupted ingest does not embed finished work again. Lives
beside the generations (not inside one): it is only a cache, any entry can be recomputed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    embedder  TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector    BLOB NOT NULL,
    PRIMARY KEY (embedder, text_hash)
) WITHOUT ROWID;
"""
_SQL_BATCH = 500


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Get/put float32 vectors for one embedder fingerprint (name, dimension and passage settings)."""

    def __init__(self, path: Path, embedder_key: str, dimension: int):
        self._conn = sqlite3.connect(path)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            # A damaged cache is not worth failing an ingest for: start it over.
            self._conn.close()
            path.unlink(missing_ok=True)
            self._conn = sqlite3.connect(path)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
        self._key = embedder_key
        self._dimension = dimension

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for those of ``texts`` that have one, keyed by text hash."""
        hashes = sorted({text_hash(t) for t in texts})
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), _SQL_BATCH):
            batch = hashes[start:start + _SQL_BATCH]
            marks = ",".join("?" * len(batch))
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
        with self._conn:
            self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep (text_hash TEXT PRIMARY KEY)")
            self._conn.execute("DELETE FROM keep")
            self._conn.executemany("INSERT OR IGNORE INTO keep VALUES (?)", ((text_hash(t),) for t in texts))
            dropped = self._conn.execute(
                "DELETE FROM vectors WHERE embedder != ? OR text_hash NOT IN (SELECT text_hash FROM keep)",
                (self._key,)).rowcount
            self._conn.execute("DELETE FROM keep")
        return dropped

    def close(self) -> None:
        self._conn.close()
