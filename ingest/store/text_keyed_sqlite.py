"""What the embedding cache and the token-vector store share: SQLite files of rows keyed by (embedder
fingerprint, sha256 of a passage's text), opened in WAL mode, read in batches, pruned to the live passages."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator, Sequence

# Host parameters per IN (...) query, well under SQLite's limit.
_SQL_BATCH = 500
log = logging.getLogger(__name__)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def open_store(path: Path, schema: str) -> sqlite3.Connection:
    """Open (or create) ``path`` with ``schema``, checked with SQLite's quick_check. These files only spare work, so
    a damaged or unopenable one is started over (one logged line) rather than failing the ingest; a full disk is
    raised (nothing to start over on)."""
    for attempt in range(2):
        conn = None
        try:
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {verdict}")
            return conn
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if attempt or "disk is full" in str(exc).lower():
                raise
            log.warning("%s: damaged or unreadable (%s); started it over (it is only a cache of work done)",
                        path, exc)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    raise AssertionError("unreachable")


def hash_batches(texts: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """The distinct text hashes of ``texts`` in batches, each with its ``?,?,...`` placeholder list."""
    hashes = sorted({text_hash(t) for t in texts})
    for start in range(0, len(hashes), _SQL_BATCH):
        batch = hashes[start:start + _SQL_BATCH]
        yield batch, ",".join("?" * len(batch))


def retain_texts(conn: sqlite3.Connection, table: str, embedder_key: str, texts: Iterable[str]) -> int:
    """Delete the rows of ``table`` of other embedders or of passages not in ``texts``; returns how many."""
    with conn:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep (text_hash TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM keep")
        conn.executemany("INSERT OR IGNORE INTO keep VALUES (?)", ((text_hash(t),) for t in texts))
        dropped = conn.execute(
            f"DELETE FROM {table} WHERE embedder != ? OR text_hash NOT IN (SELECT text_hash FROM keep)",
            (embedder_key,)).rowcount
        conn.execute("DELETE FROM keep")
    return dropped
