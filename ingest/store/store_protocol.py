"""The knowledge-base store interface: what retrieval, the ingest and the faces use without knowing the engine.

Two stores provide it: the folder of FAISS + BM25 + SQLite generations on this machine (``folder_store``, the
default) and a Milvus collection set (``milvus/milvus_store``) that several machines share. Both keep the same
promise: a reader sees one committed generation, whole; a writer builds the next one beside it and makes it live
in one last step (``StoreWriter.commit``); a writer that dies leaves the last committed generation answering.

- ``KnowledgeStore``: one base's location. Cheap questions (which generation is live, what it holds), opening a
  read-only snapshot, and the writer's steps (clean up after a dead writer, start a generation, drop old ones).
- ``StoreSnapshot``: one committed generation, read-only: dense top-k, keyword top-k, chunks by id, neighbours,
  documents. Opening it checks the embedder's identity.
- ``StoreWriter``: the next generation in the making: document and chunk changes, then ``commit`` or ``abort``.
  A per-document delete is ``remove_document`` + ``remove_orphan_contents`` + ``commit`` on either store.

Callers hold the base's ``WriterLock`` (``kb_lock``) around every writer step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ingest.records import Chunk, ChunkDraft, DocumentRecord

# (chunk id, score), best first.
Ranking = list[tuple[int, float]]


@dataclass(frozen=True)
class StoreInfo:
    """What a committed generation holds, as the faces show it."""

    backend: str  # "folder" or "milvus"
    location: str  # the folder, or "<uri> <collection prefix>": for messages
    generation: str
    embedder: str
    dimension: int
    n_documents: int
    n_chunks: int
    created_at: float
    updated_at: float
    index_type: str = ""


class StoreSnapshot(Protocol):
    """One committed generation, read-only; searches never see another generation's rows."""

    info: StoreInfo
    # One line per thing repaired while opening (e.g. a keyword index rebuilt in memory), for the faces.
    notices: list[str]

    def dense_search(self, vector: np.ndarray, k: int) -> Ranking:
        """Chunks nearest to ``vector`` by inner product (cosine: vectors are L2-normalised)."""
        ...

    def keyword_search(self, query: str, k: int) -> Ranking:
        """Chunks by BM25 score for ``query``; only chunks sharing a token with it."""
        ...

    def get_chunks(self, ids: Sequence[int]) -> list[Chunk]:
        """Chunks for ``ids`` in the same order; unknown ids are skipped."""
        ...

    def neighbours(self, chunk: Chunk, window: int = 1) -> list[Chunk]:
        """Chunks of the same document with ordinal within ``window`` of ``chunk`` (itself included), in order."""
        ...

    def documents(self) -> list[DocumentRecord]: ...

    def close(self) -> None: ...


class StoreWriter(Protocol):
    """The next generation, begun from the live one (or from nothing on a rebuild)."""

    generation: str
    embedder: str
    dimension: int

    def documents(self) -> list[DocumentRecord]: ...

    def document_with_content(self, content_hash: str) -> DocumentRecord | None:
        """The first-recorded document holding ``content_hash``."""
        ...

    def put_document(self, record: DocumentRecord) -> None:
        """Insert or replace the document at ``record.path`` (keeping its place as first source of its content)."""
        ...

    def remove_document(self, path: str) -> None: ...

    def add_chunks(self, content_hash: str, drafts: Sequence[ChunkDraft], vectors: np.ndarray) -> list[int]:
        """Store one content's chunks and their vectors under fresh ids (never reused in this base)."""
        ...

    def remove_orphan_contents(self) -> list[int]:
        """Drop chunks whose content no document refers to any more; returns their ids."""
        ...

    def commit(self) -> StoreInfo:
        """Make this generation live, in one step readers see whole or not at all."""
        ...

    def abort(self) -> None:
        """Throw the unfinished generation away (the live one is untouched)."""
        ...


class KnowledgeStore(Protocol):
    """One knowledge base's store; nothing is opened or created until asked."""

    backend: str
    location: str

    def live_generation(self) -> str | None:
        """The live generation's name, None when nothing was committed yet; cheap (faces poll it)."""
        ...

    def live_info(self) -> StoreInfo | None:
        """What the live generation holds, None when nothing was committed yet; KnowledgeBaseError when damaged."""
        ...

    def live_documents(self) -> tuple[str | None, list[DocumentRecord]]:
        """The live generation's name and documents, without opening its indexes."""
        ...

    def open(self, embedder: str | None = None, dimension: int | None = None) -> StoreSnapshot:
        """The live generation for reading; KnowledgeBaseError when it was built by another embedder (name or
        dimension), damaged or unreachable, KnowledgeBaseMissingError when nothing was committed yet."""
        ...

    # --- writing (under the base's WriterLock) ---

    def prepare_write(self, rebuild: bool = False) -> list[str]:
        """Remove what an interrupted writer left and (unless ``rebuild``) repair a damaged live pointer; returns
        a warning line per repair."""
        ...

    def rewrite_reason(self) -> str:
        """Why the live generation must be written again though no document changed ("" when it need not)."""
        ...

    def start_writer(self, embedder: str, dimension: int, rebuild: bool = False) -> StoreWriter:
        """Begin the next generation (from nothing with ``rebuild``); refuses another embedder's base."""
        ...

    def live_texts(self) -> list[str]:
        """Every live chunk's text (the local caches keep only these after a commit)."""
        ...

    def collect_garbage(self) -> list[str]:
        """Drop generations no reader needs any more (``index.keep_generations``, ``gc_grace_seconds``)."""
        ...
