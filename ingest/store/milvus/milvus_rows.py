"""Rows of a Milvus knowledge base as docqa's records, and the reads and writes every part of the store shares."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from ingest.records import Chunk, ChunkDraft, DocumentRecord
from ingest.store.milvus.milvus_schema import (
    COMMIT_FIELDS,
    DOC_FIELDS,
    FORMAT_VERSION,
    MAX_VARCHAR,
    NOT_REMOVED,
    PLACEHOLDER,
    QUERY_WINDOW,
    CollectionNames,
    generation_name,
)
from ingest.store.store_protocol import StoreInfo

# Ids per "in [...]" filter: keeps each expression small.
ID_BATCH = 1000


@dataclass(frozen=True)
class Commit:
    """One committed generation: what the pointer row of ``<prefix>_commits`` records."""

    gen: int
    epoch: int
    embedder: str
    dimension: int
    n_documents: int
    n_chunks: int
    created_at: float
    updated_at: float
    next_chunk_id: int
    next_doc_pk: int
    format_version: int = FORMAT_VERSION

    def row(self) -> dict:
        return {**asdict(self), "placeholder": PLACEHOLDER}

    def info(self, location: str, index_type: str) -> StoreInfo:
        return StoreInfo(backend="milvus", location=location, generation=generation_name(self.gen),
                         embedder=self.embedder, dimension=self.dimension, n_documents=self.n_documents,
                         n_chunks=self.n_chunks, created_at=self.created_at, updated_at=self.updated_at,
                         index_type=index_type)


def read_commits(client, names: CollectionNames) -> list[Commit]:
    """Every commit row, oldest first; [] when the base has none (or no commit collection yet)."""
    if not client.has_collection(names.commits):
        return []
    ensure_loaded(client, names.commits)
    rows = client.query(names.commits, filter="gen >= 0", output_fields=COMMIT_FIELDS, limit=QUERY_WINDOW)
    return sorted((Commit(**{f: row[f] for f in COMMIT_FIELDS}) for row in rows), key=lambda c: c.gen)


def ensure_loaded(client, collection: str) -> None:
    """Milvus serves searches and queries only from loaded collections (a restarted server releases them)."""
    state = str(client.get_load_state(collection).get("state", ""))
    if "Loaded" not in state or "NotLoad" in state:
        client.load_collection(collection)


def iterate(client, collection: str, filter: str, fields: list[str], batch: int = 1000) -> Iterator[dict]:
    """Every row matching ``filter`` (an iterator: Milvus caps one query at QUERY_WINDOW rows)."""
    rows = client.query_iterator(collection, batch_size=batch, filter=filter, output_fields=fields)
    try:
        while page := rows.next():
            yield from page
    finally:
        rows.close()


def query_ids(client, collection: str, field: str, ids: Sequence[int], filter: str,
              fields: list[str]) -> list[dict]:
    """Rows whose ``field`` is one of ``ids`` and that match ``filter``, in batches."""
    found: list[dict] = []
    for start in range(0, len(ids), ID_BATCH):
        batch = ", ".join(str(int(i)) for i in ids[start:start + ID_BATCH])
        found.extend(client.query(collection, filter=f"{field} in [{batch}] and {filter}", output_fields=fields,
                                  limit=QUERY_WINDOW))
    return found


def set_removed(client, collection: str, pk_field: str, pks: Sequence[int], generation: int) -> None:
    """Mark rows removed by ``generation`` (NOT_REMOVED puts them back): a partial upsert of one field."""
    for start in range(0, len(pks), ID_BATCH):
        rows = [{pk_field: int(pk), "gen_removed": generation} for pk in pks[start:start + ID_BATCH]]
        client.upsert(collection, rows, partial_update=True)


def chunk_row(chunk_id: int, content_hash: str, draft: ChunkDraft, vector: Sequence[float], generation: int) -> dict:
    heading = json.dumps(draft.heading_path, ensure_ascii=False)
    for name, value in (("text", draft.text), ("heading path", heading)):
        if len(value.encode("utf-8")) > MAX_VARCHAR:
            raise ValueError(f"a chunk's {name} is {len(value.encode('utf-8'))} bytes; Milvus text fields hold "
                             f"{MAX_VARCHAR}: lower chunking.chunk_size")
    return {"chunk_id": chunk_id, "content_hash": content_hash, "ordinal": draft.ordinal, "text": draft.text,
            "page": -1 if draft.page is None else draft.page, "heading_path": heading,
            "char_start": draft.char_start, "char_end": draft.char_end, "gen_added": generation,
            "gen_removed": NOT_REMOVED, "dense": [float(x) for x in vector]}


def chunk_from_row(row: dict, source: DocumentRecord | None) -> Chunk:
    return Chunk(chunk_id=int(row["chunk_id"]), doc_id=row["content_hash"], source=source.path if source else "",
                 text=row["text"], ordinal=int(row["ordinal"]), page=None if row["page"] < 0 else int(row["page"]),
                 heading_path=list(json.loads(row["heading_path"])), char_start=int(row["char_start"]),
                 char_end=int(row["char_end"]), title=source.title if source else "")


@dataclass
class StoredDocument:
    """A document row: the record, its primary key and its place in first-recorded order."""

    pk: int
    seq: int
    record: DocumentRecord


def document_row(doc: StoredDocument, generation: int) -> dict:
    r = doc.record
    return {"doc_pk": doc.pk, "seq": doc.seq, "path": r.path, "content_hash": r.content_hash, "mtime": r.mtime,
            "size": r.size, "n_chunks": r.n_chunks, "file_type": r.file_type, "title": r.title,
            "updated_at": r.updated_at, "gen_added": generation, "gen_removed": NOT_REMOVED,
            "placeholder": PLACEHOLDER}


def document_from_row(row: dict) -> StoredDocument:
    record = DocumentRecord(path=row["path"], content_hash=row["content_hash"], mtime=row["mtime"],
                            size=int(row["size"]), n_chunks=int(row["n_chunks"]), file_type=row["file_type"],
                            title=row["title"], updated_at=row["updated_at"])
    return StoredDocument(int(row["doc_pk"]), int(row["seq"]), record)


def read_documents(client, names: CollectionNames, commit: Commit, filter: str) -> list[StoredDocument]:
    """The documents a generation sees, in first-recorded order."""
    collection = names.docs(commit.epoch)
    ensure_loaded(client, collection)
    return sorted((document_from_row(row) for row in iterate(client, collection, filter, DOC_FIELDS)),
                  key=lambda d: d.seq)


def first_sources(documents: Sequence[StoredDocument]) -> dict[str, DocumentRecord]:
    """Content hash → the first-recorded document holding it (a chunk's source and title)."""
    sources: dict[str, DocumentRecord] = {}
    for doc in sorted(documents, key=lambda d: d.seq):
        sources.setdefault(doc.record.content_hash, doc.record)
    return sources

