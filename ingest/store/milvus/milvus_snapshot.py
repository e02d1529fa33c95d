"""Reading one committed generation of a Milvus knowledge base (``store_protocol.StoreSnapshot``).

Every search and query carries the generation's row filter, so rows an unfinished (or later) ingest wrote are never
seen. Dense and BM25 candidates come from Milvus; fusion, reranking and neighbour merging stay docqa's own
(``retrieval/``), the same code as for the folder store. The documents are read once when the snapshot opens:
they give every chunk its source and title.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ingest.records import Chunk, DocumentRecord
from ingest.store.milvus.milvus_rows import (
    Commit,
    chunk_from_row,
    ensure_loaded,
    first_sources,
    query_ids,
    read_documents,
)
from ingest.store.milvus.milvus_schema import CHUNK_FIELDS, QUERY_WINDOW, CollectionNames, visible
from ingest.store.store_protocol import Ranking, StoreInfo


WARM_UP_QUERY = "知识库 knowledge base"


class MilvusSnapshot:
    def __init__(self, client, names: CollectionNames, commit: Commit, info: StoreInfo, search_params: dict):
        """``client``: a ``milvus_connection.GuardedClient`` (every failure is a one-line MilvusStoreError)."""
        self._client = client
        self._chunks = names.chunks(commit.epoch)
        self._filter = visible(commit.gen)
        self._search_params = search_params
        self.info = info
        self.notices: list[str] = []
        ensure_loaded(client, self._chunks)
        self._documents = read_documents(client, names, commit, self._filter)
        self._sources = first_sources(self._documents)
        # Milvus Lite loads its jieba dictionary and builds each segment's BM25 index on the first keyword search
        # (seconds): paid here, while a face says it is loading, not by the first question.
        self.keyword_search(WARM_UP_QUERY, 1)

    def dense_search(self, vector: np.ndarray, k: int) -> Ranking:
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if len(query) != self.info.dimension:
            raise ValueError(f"query vector has dimension {len(query)}, the collection holds {self.info.dimension}")
        hits = self._client.search(self._chunks, data=[query.tolist()], anns_field="dense", filter=self._filter,
                          limit=min(k, QUERY_WINDOW), search_params=self._search_params)
        return [(int(hit["chunk_id"]), float(hit["distance"])) for hit in hits[0]]

    def keyword_search(self, query: str, k: int) -> Ranking:
        if k <= 0 or not query.strip():
            return []
        hits = self._client.search(self._chunks, data=[query], anns_field="sparse", filter=self._filter,
                          limit=min(k, QUERY_WINDOW), search_params={"metric_type": "BM25"})
        # BM25 scores are positive; Milvus Lite reports them negated as distances, a server as they are.
        return [(int(hit["chunk_id"]), abs(float(hit["distance"]))) for hit in hits[0]]

    def get_chunks(self, ids: Sequence[int]) -> list[Chunk]:
        wanted = [int(i) for i in ids if int(i) >= 0]
        rows = query_ids(self._client, self._chunks, "chunk_id", wanted, self._filter, CHUNK_FIELDS)
        found = {int(row["chunk_id"]): row for row in rows}
        return [chunk_from_row(found[i], self._sources.get(found[i]["content_hash"])) for i in wanted if i in found]

    def neighbours(self, chunk: Chunk, window: int = 1) -> list[Chunk]:
        content = chunk.doc_id.replace("\\", "\\\\").replace('"', '\\"')
        rows = self._client.query(self._chunks, output_fields=CHUNK_FIELDS, limit=QUERY_WINDOW,
                          filter=f'content_hash == "{content}" and ordinal >= {chunk.ordinal - window} and '
                                 f'ordinal <= {chunk.ordinal + window} and {self._filter}')
        source = self._sources.get(chunk.doc_id)
        return sorted((chunk_from_row(row, source) for row in rows), key=lambda c: c.ordinal)

    def documents(self) -> list[DocumentRecord]:
        return sorted((d.record for d in self._documents), key=lambda r: r.path)

    def close(self) -> None:
        """The client stays with the store (other snapshots of this process share it)."""

    def __enter__(self) -> "MilvusSnapshot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
