"""Writing the next generation of a Milvus knowledge base (``store_protocol.StoreWriter``).

Milvus has no transactions, so the commit is made of steps readers cannot see until the last one:
1. new chunk and document rows go in tagged ``gen_added = N`` (every reader filters on ``gen_added <= live``);
2. rows this generation drops get ``gen_removed = N`` (readers of N-1 and older still see them);
3. the commit row N is inserted into ``<prefix>_commits``: one row, atomic, and from then on N is the live
   generation for every reader that looks.
A writer killed before step 3 leaves rows that no reader sees; the next writer deletes them and clears the marks
(``MilvusStore.prepare_write``). A rebuild writes a new epoch (new collections) instead and switches the same way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ingest.records import ChunkDraft, DocumentRecord
from ingest.settings import StoreSettings
from ingest.store.milvus.milvus_rows import (
    Commit,
    StoredDocument,
    chunk_row,
    document_row,
    iterate,
    set_removed,
)
from ingest.store.milvus.milvus_schema import NOT_REMOVED, CollectionNames, generation_name, visible
from ingest.store.store_protocol import StoreInfo


class MilvusWriter:
    def __init__(self, client, names: CollectionNames, base: Commit, documents: list[StoredDocument],
                 settings: StoreSettings, location: str, index_type: str, new_epoch: bool):
        self._client = client
        self._names = names
        self._base = base  # the live commit, or a blank one for a new epoch (its gen is still the live one's)
        self._settings = settings
        self._location = location
        self._index_type = index_type
        self._new_epoch = new_epoch
        self.gen = base.gen + 1
        self.generation = generation_name(self.gen)
        self.embedder = base.embedder
        self.dimension = base.dimension
        self._chunks = names.chunks(base.epoch)
        self._docs = names.docs(base.epoch)
        self._live = {d.record.path: d for d in documents}  # as the live generation has them
        self._current = dict(self._live)  # as this generation will
        self._contents_before = {d.record.content_hash for d in documents}
        self._added_contents: dict[str, list[int]] = {}
        self._pending_rows: list[dict] = []
        self._removed_chunks: list[int] = []
        self._n_chunks = base.n_chunks
        self._next_chunk_id = base.next_chunk_id
        self._next_doc_pk = base.next_doc_pk
        self._next_seq = max((d.seq for d in documents), default=0) + 1

    # --- documents -------------------------------------------------------------------------------------------

    def documents(self) -> list[DocumentRecord]:
        return sorted((d.record for d in self._current.values()), key=lambda r: r.path)

    def document_with_content(self, content_hash: str) -> DocumentRecord | None:
        holders = [d for d in self._current.values() if d.record.content_hash == content_hash]
        return min(holders, key=lambda d: d.seq).record if holders else None

    def put_document(self, record: DocumentRecord) -> None:
        previous = self._current.get(record.path)
        seq = previous.seq if previous is not None else self._take_seq()
        self._current[record.path] = StoredDocument(self._take_doc_pk(), seq, record)

    def remove_document(self, path: str) -> None:
        self._current.pop(path, None)

    def _take_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq - 1

    def _take_doc_pk(self) -> int:
        self._next_doc_pk += 1
        return self._next_doc_pk - 1

    # --- chunks ------------------------------------------------------------------------------------------------

    def add_chunks(self, content_hash: str, drafts: Sequence[ChunkDraft], vectors: np.ndarray) -> list[int]:
        ids = list(range(self._next_chunk_id, self._next_chunk_id + len(drafts)))
        self._next_chunk_id += len(drafts)
        rows = np.asarray(vectors, dtype=np.float32).reshape(len(drafts), -1) if drafts else []
        for chunk_id, draft, vector in zip(ids, drafts, rows):
            self._pending_rows.append(chunk_row(chunk_id, content_hash, draft, vector, self.gen))
        self._added_contents.setdefault(content_hash, []).extend(ids)
        self._n_chunks += len(ids)
        if len(self._pending_rows) >= self._settings.insert_batch:
            self._flush_rows()
        return ids

    def _flush_rows(self) -> None:
        for start in range(0, len(self._pending_rows), self._settings.insert_batch):
            self._client.insert(self._chunks, self._pending_rows[start:start + self._settings.insert_batch])
        self._pending_rows = []

    def remove_orphan_contents(self) -> list[int]:
        referenced = {d.record.content_hash for d in self._current.values()}
        orphans: list[int] = []
        lost = sorted(self._contents_before - referenced)
        for start in range(0, len(lost), 100):
            hashes = ", ".join(f'"{h}"' for h in lost[start:start + 100])
            orphans.extend(int(row["chunk_id"]) for row in iterate(
                self._client, self._chunks, f"content_hash in [{hashes}] and {visible(self._base.gen)}",
                ["chunk_id"]))
        self._removed_chunks.extend(orphans)
        self._contents_before &= referenced
        # Content added by this generation and already dropped again (its only file went away in the same run).
        for content in [c for c in self._added_contents if c not in referenced]:
            dropped = set(self._added_contents.pop(content))
            self._pending_rows = [r for r in self._pending_rows if r["chunk_id"] not in dropped]
            self._client.delete(self._chunks, ids=sorted(dropped))  # those already flushed
            self._n_chunks -= len(dropped)
        self._n_chunks -= len(orphans)
        return orphans

    # --- commit ------------------------------------------------------------------------------------------------

    def commit(self) -> StoreInfo:
        self._flush_rows()
        changed = {path: doc for path, doc in self._current.items() if self._live.get(path) is not doc}
        gone = [doc.pk for path, doc in self._live.items() if self._current.get(path) is not doc]
        rows = [document_row(doc, self.gen) for doc in changed.values()]
        for start in range(0, len(rows), self._settings.insert_batch):
            self._client.insert(self._docs, rows[start:start + self._settings.insert_batch])
        if not self._new_epoch:
            set_removed(self._client, self._docs, "doc_pk", gone, self.gen)
            set_removed(self._client, self._chunks, "chunk_id", self._removed_chunks, self.gen)
        # Sealed and indexed before readers arrive: Milvus searches rows still in its write buffer without their
        # index (Milvus Lite: row by row in Python, seconds per query at a few thousand rows).
        for collection in (self._chunks, self._docs):
            self._client.flush(collection)
        now = time.time()
        commit = Commit(gen=self.gen, epoch=self._base.epoch, embedder=self.embedder, dimension=self.dimension,
                        n_documents=len(self._current), n_chunks=self._n_chunks,
                        created_at=self._base.created_at, updated_at=now, next_chunk_id=self._next_chunk_id,
                        next_doc_pk=self._next_doc_pk)
        # The one step that makes the generation live.
        self._client.insert(self._names.commits, [commit.row()])
        return commit.info(self._location, self._index_type)

    def abort(self) -> None:
        """Remove what this generation wrote; on failure the next writer's clean-up does it."""
        try:
            if self._new_epoch:
                for collection in (self._chunks, self._docs):
                    self._client.drop_collection(collection)
                return
            for collection in (self._chunks, self._docs):
                self._client.delete(collection, filter=f"gen_added >= {self.gen}")
            for collection, pk in ((self._chunks, "chunk_id"), (self._docs, "doc_pk")):
                marked = [int(row[pk]) for row in iterate(self._client, collection,
                                                          f"gen_removed == {self.gen}", [pk])]
                set_removed(self._client, collection, pk, marked, NOT_REMOVED)
        except Exception:  # the base is unreachable: prepare_write of the next ingest cleans up
            pass

