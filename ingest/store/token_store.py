"""Stored token vectors of passages, for the MaxSim reranker: compressed codes keyed by embedder fingerprint +
sha256 of the passage text (the embedding cache's key).

Like the embedding cache it lives beside the generations and is written batch by batch as the ingest embeds, so
an interrupted run keeps its work and an edited document keeps the codes of its unchanged chunks. Readers may
find a passage missing (a base built before this store, a reader on an older generation after ``retain``): the
reranker then encodes that passage itself, so every entry is an acceleration, never a requirement.

Codes are float16 until the store holds ``train_tokens`` tokens; then a product quantizer is trained on them and
every row is re-encoded in one transaction (``ingest/store/token_codec.py``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ingest.settings import IndexSettings
from ingest.store.text_keyed_sqlite import (
    hash_batches,
    open_store,
    retain_texts,
    text_hash,
)
from ingest.store.token_codec import TokenCodec, float16_codec, train_pq_codec

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS codecs (
    embedder    TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    description TEXT NOT NULL,
    codec       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    embedder  TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    n_tokens  INTEGER NOT NULL,
    codes     BLOB NOT NULL,
    PRIMARY KEY (embedder, text_hash)
) WITHOUT ROWID;
"""


class TokenVectorStore:
    """Token vectors of passages for one embedder fingerprint. Open it read-write in the ingest (holding the
    writer lock) or read-only (``open_readonly``) at query time; a read-only store may be shared by threads."""

    def __init__(self, conn: sqlite3.Connection, embedder_key: str, dimension: int):
        self._conn = conn
        self._key = embedder_key
        self._dimension = dimension
        self._lock = threading.Lock()
        self._codec: tuple[int, TokenCodec] | None = None
        self._damage_reported = False

    @classmethod
    def open(cls, path: Path, embedder_key: str, dimension: int) -> "TokenVectorStore":
        conn = open_store(path, _SCHEMA)
        return cls(conn, embedder_key, dimension)

    @classmethod
    def open_readonly(cls, path: Path, embedder_key: str, dimension: int) -> "TokenVectorStore | None":
        """The store at ``path`` for reading, or None when there is none (or it cannot be read)."""
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("SELECT 1 FROM codecs LIMIT 1")
        except sqlite3.Error as exc:
            log.warning("%s: unreadable (%s); the reranker encodes passages itself until the next "
                        "`python -m ingest` starts the store over", path, exc)
            return None
        return cls(conn, embedder_key, dimension)

    def _current_codec(self) -> TokenCodec | None:
        """The codec rows are encoded with (deserialised once per version)."""
        row = self._conn.execute("SELECT version, description, codec FROM codecs WHERE embedder = ?",
                                 (self._key,)).fetchone()
        if row is None:
            return None
        version, description, blob = row
        if self._codec is None or self._codec[0] != version:
            self._codec = (version, TokenCodec.from_bytes(description, blob))
        return self._codec[1]

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored token vectors (tokens, dimension; float32) of those of ``texts`` that have them, by text hash.
        A damaged store gives none (the reranker then encodes the passages itself), with one logged line."""
        try:
            return self._get_many(texts)
        except (sqlite3.DatabaseError, ValueError) as exc:
            if not self._damage_reported:
                self._damage_reported = True
                log.warning("token vectors unreadable (%s); the reranker encodes the passages itself until the "
                            "next `python -m ingest` starts the store over", exc)
            return {}

    def _get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            # One read transaction: the codec and the codes come from the same snapshot even while an ingest
            # re-encodes the store.
            self._conn.execute("BEGIN")
            try:
                codec = self._current_codec()
                if codec is None:
                    return found
                for batch, marks in hash_batches(texts):
                    rows = self._conn.execute(
                        f"SELECT text_hash, n_tokens, codes FROM tokens WHERE embedder = ? AND text_hash IN ({marks})",
                        (self._key, *batch))
                    for digest, n_tokens, codes in rows:
                        found[digest] = codec.decode(codes, n_tokens)
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")
        return found

    def missing(self, texts: Sequence[str]) -> list[str]:
        """Those of ``texts`` (deduplicated, in order) with no stored token vectors."""
        stored = set()
        for batch, marks in hash_batches(texts):
            stored.update(h for (h,) in self._conn.execute(
                f"SELECT text_hash FROM tokens WHERE embedder = ? AND text_hash IN ({marks})", (self._key, *batch)))
        return [t for t in dict.fromkeys(texts) if text_hash(t) not in stored]

    def put_many(self, texts: Sequence[str], token_vectors: Sequence[np.ndarray]) -> None:
        """Store one finished batch durably (committed before returning)."""
        with self._conn:
            codec = self._current_codec()
            if codec is None:
                codec = float16_codec(self._dimension)
                self._write_codec(codec)
            self._conn.executemany(
                "INSERT OR REPLACE INTO tokens (embedder, text_hash, n_tokens, codes) VALUES (?, ?, ?, ?)",
                [(self._key, text_hash(t), len(v), codec.encode(v)) for t, v in zip(texts, token_vectors)])

    def add(self, texts: Sequence[str], token_vectors: Sequence[np.ndarray], settings: IndexSettings) -> None:
        """``put_many``, then quantise as soon as the store holds enough tokens to train on (``settings.token_pq_*``),
        so a big first ingest never holds all its tokens in float16."""
        self.put_many(texts, token_vectors)
        self.quantize_if_large(settings.token_pq_train_tokens, settings.token_pq_bytes,
                               settings.token_pq_max_train_tokens, settings.train_seed)

    def _write_codec(self, codec: TokenCodec) -> None:
        # A clock version: never reused, even when a codec is dropped and another made later for the same key.
        self._conn.execute("INSERT OR REPLACE INTO codecs (embedder, version, description, codec) VALUES (?, ?, ?, ?)",
                           (self._key, time.time_ns(), codec.description, codec.to_bytes()))

    def total_tokens(self) -> int:
        return int(self._conn.execute("SELECT COALESCE(SUM(n_tokens), 0) FROM tokens WHERE embedder = ?",
                                      (self._key,)).fetchone()[0])

    def quantize_if_large(self, train_tokens: int, bytes_per_token: int, max_train_tokens: int,
                          seed: int = 0) -> bool:
        """Once the store holds ``train_tokens`` float16 tokens, train a product quantizer on (a sample of at most
        ``max_train_tokens`` of) them and re-encode every row, in one transaction. True when it did."""
        codec = self._current_codec()
        if codec is None or codec.is_quantized or self.total_tokens() < train_tokens:
            return False
        rows = self._conn.execute("SELECT text_hash, n_tokens, codes FROM tokens WHERE embedder = ?",
                                  (self._key,)).fetchall()
        decoded = [(digest, codec.decode(codes, n)) for digest, n, codes in rows]
        everything = np.concatenate([v for _, v in decoded])
        rng = np.random.default_rng(seed)
        sample = everything[rng.choice(len(everything), min(len(everything), max_train_tokens), replace=False)]
        pq = train_pq_codec(sample, bytes_per_token, seed)
        with self._conn:
            self._write_codec(pq)
            self._conn.executemany("UPDATE tokens SET codes = ? WHERE embedder = ? AND text_hash = ?",
                                   [(pq.encode(v), self._key, digest) for digest, v in decoded])
        return True

    def retain(self, texts: Iterable[str]) -> int:
        """Forget the token vectors of every passage but ``texts`` (the live knowledge base's), and those of other
        embedders; returns how many rows were dropped."""
        dropped = retain_texts(self._conn, "tokens", self._key, texts)
        with self._conn:
            self._conn.execute("DELETE FROM codecs WHERE embedder != ?", (self._key,))
        return dropped

    def close(self) -> None:
        self._conn.close()
