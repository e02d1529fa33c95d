"""SQLite catalog of a knowledge-base generation: which files were ingested and the text of every chunk.

Content is stored once per content hash: ``documents`` maps each path to a content hash, ``chunks`` belong to a
content hash. Two files with the same bytes share their chunks (embedded once, returned once by retrieval); a
chunk's ``source`` is the first path recorded for its content.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ingest.records import Chunk, ChunkDraft, DocumentRecord
from ingest.store.store_files import permission_message

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    path         TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    mtime        REAL NOT NULL,
    size         INTEGER NOT NULL,
    n_chunks     INTEGER NOT NULL,
    file_type    TEXT NOT NULL DEFAULT '',
    title        TEXT NOT NULL DEFAULT '',
    updated_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_hash ON documents (content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id     INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL,
    ordinal      INTEGER NOT NULL,
    text         TEXT NOT NULL,
    page         INTEGER,
    heading_path TEXT NOT NULL DEFAULT '[]',
    char_start   INTEGER NOT NULL,
    char_end     INTEGER NOT NULL,
    UNIQUE (content_hash, ordinal)
);
"""

# Each chunk joined to the first-recorded document holding its content (its source path and title).
_CHUNK_SELECT = """
SELECT c.chunk_id, c.content_hash, d.path, c.text, c.ordinal, c.page, c.heading_path,
       c.char_start, c.char_end, d.title
FROM chunks c
JOIN documents d ON d.rowid = (SELECT rowid FROM documents WHERE content_hash = c.content_hash
                               ORDER BY rowid LIMIT 1)
"""

_DOC_COLUMNS = "path, content_hash, mtime, size, n_chunks, file_type, title, updated_at"
_NEXT_ID_KEY = "next_chunk_id"
# SQLite's default limit on bound parameters is 999 in old builds; stay below it.
_SQL_BATCH = 500


class CatalogError(Exception):
    """The catalog file is not a readable catalog."""


def _chunk_from_row(row: tuple) -> Chunk:
    return Chunk(chunk_id=row[0], doc_id=row[1], source=row[2], text=row[3], ordinal=row[4], page=row[5],
                 heading_path=list(json.loads(row[6])), char_start=row[7], char_end=row[8], title=row[9])


class Catalog:
    """One catalog file. Writers get a plain connection (commit explicitly); readers a read-only one."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path

    @classmethod
    def create(cls, path: Path) -> "Catalog":
        conn = sqlite3.connect(path)
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '1')", (_NEXT_ID_KEY,))
        conn.commit()
        return cls(conn, path)

    @classmethod
    def copy(cls, source: Path, target: Path) -> "Catalog":
        """A writable copy of ``source`` at ``target`` (the old generation is never modified)."""
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            src.backup(dst)
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{source}: cannot copy catalog ({exc})") from exc
        finally:
            src.close()
        catalog = cls(dst, target)
        catalog.validate()
        return catalog

    @classmethod
    def open_readonly(cls, path: Path) -> "Catalog":
        """Open a committed generation's catalog; ``immutable`` because committed generations never change."""
        if not path.is_file():
            raise CatalogError(f"{path}: missing")
        try:
            with open(path, "rb"):  # SQLite says "unable to open database file" for a permission problem too
                pass
        except PermissionError as exc:
            raise CatalogError(permission_message(path, "read")) from exc
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise CatalogError(f"{path}: cannot be opened ({exc})") from exc
        catalog = cls(conn, path)
        catalog.validate()
        return catalog

    def validate(self) -> None:
        """Fail with CatalogError unless the file is a SQLite database with our tables."""
        try:
            tables = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{self.path}: not a readable catalog ({exc})") from exc
        missing = {"meta", "documents", "chunks"} - tables
        if missing:
            raise CatalogError(f"{self.path}: not a catalog (missing tables {sorted(missing)})")

    def commit(self) -> None:
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    # --- documents -------------------------------------------------------------------------------------------

    def documents(self) -> list[DocumentRecord]:
        rows = self._conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY path")
        return [DocumentRecord(*row) for row in rows]

    def document(self, path: str) -> DocumentRecord | None:
        row = self._conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE path = ?", (path,)).fetchone()
        return DocumentRecord(*row) if row else None

    def put_document(self, record: DocumentRecord) -> None:
        """Insert or replace the row of ``record.path`` (keeping its position as first source of its content)."""
        values = (record.content_hash, record.mtime, record.size, record.n_chunks, record.file_type,
                  record.title, record.updated_at, record.path)
        updated = self._conn.execute(
            "UPDATE documents SET content_hash=?, mtime=?, size=?, n_chunks=?, file_type=?, title=?, updated_at=?"
            " WHERE path=?", values).rowcount
        if not updated:
            self._conn.execute(f"INSERT INTO documents ({_DOC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (record.path, *values[:-1]))

    def document_with_content(self, content_hash: str) -> DocumentRecord | None:
        """The first-recorded document holding ``content_hash`` (to describe a duplicate without loading it)."""
        row = self._conn.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE content_hash = ? ORDER BY rowid LIMIT 1",
                                 (content_hash,)).fetchone()
        return DocumentRecord(*row) if row else None

    def remove_document(self, path: str) -> None:
        self._conn.execute("DELETE FROM documents WHERE path = ?", (path,))

    def count_documents(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    # --- content and chunks ---------------------------------------------------------------------------------

    def add_chunks(self, content_hash: str, drafts: Sequence[ChunkDraft]) -> list[int]:
        """Store the chunks of one content under fresh ids (never reused within this knowledge base)."""
        first = int(self._conn.execute("SELECT value FROM meta WHERE key = ?", (_NEXT_ID_KEY,)).fetchone()[0])
        ids = list(range(first, first + len(drafts)))
        self._conn.executemany(
            "INSERT INTO chunks (chunk_id, content_hash, ordinal, text, page, heading_path, char_start, char_end)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(cid, content_hash, d.ordinal, d.text, d.page, json.dumps(d.heading_path, ensure_ascii=False),
              d.char_start, d.char_end) for cid, d in zip(ids, drafts)])
        self._conn.execute("UPDATE meta SET value = ? WHERE key = ?", (str(first + len(drafts)), _NEXT_ID_KEY))
        return ids

    def remove_orphan_contents(self) -> list[int]:
        """Delete chunks whose content no document refers to any more; returns their ids (to drop vectors)."""
        orphan = "SELECT chunk_id FROM chunks WHERE content_hash NOT IN (SELECT content_hash FROM documents)"
        ids = [row[0] for row in self._conn.execute(orphan)]
        self._conn.execute("DELETE FROM chunks WHERE content_hash NOT IN (SELECT content_hash FROM documents)")
        return ids

    def count_chunks(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def chunk_ids(self) -> list[int]:
        return [row[0] for row in self._conn.execute("SELECT chunk_id FROM chunks ORDER BY chunk_id")]

    def get_chunks(self, ids: Sequence[int]) -> list[Chunk]:
        """Chunks for ``ids`` in the same order; unknown ids are skipped."""
        found: dict[int, Chunk] = {}
        wanted = [int(i) for i in ids]
        for start in range(0, len(wanted), _SQL_BATCH):
            batch = wanted[start:start + _SQL_BATCH]
            marks = ",".join("?" * len(batch))
            for row in self._conn.execute(f"{_CHUNK_SELECT} WHERE c.chunk_id IN ({marks})", batch):
                found[row[0]] = _chunk_from_row(row)
        return [found[i] for i in wanted if i in found]

    def neighbours(self, chunk: Chunk, window: int = 1) -> list[Chunk]:
        rows = self._conn.execute(
            f"{_CHUNK_SELECT} WHERE c.content_hash = ? AND c.ordinal BETWEEN ? AND ? ORDER BY c.ordinal",
            (chunk.doc_id, chunk.ordinal - window, chunk.ordinal + window))
        return [_chunk_from_row(row) for row in rows]

    def iter_chunks(self, batch_size: int = _SQL_BATCH) -> Iterator[Chunk]:
        """All chunks in id order, fetched in batches so a large catalog is not loaded at once."""
        cursor = self._conn.execute(f"{_CHUNK_SELECT} ORDER BY c.chunk_id")
        while rows := cursor.fetchmany(batch_size):
            yield from (_chunk_from_row(row) for row in rows)

    def iter_id_text(self) -> Iterable[tuple[int, str]]:
        return self._conn.execute("SELECT chunk_id, text FROM chunks ORDER BY chunk_id")
