"""A knowledge base on Milvus (``store_protocol.KnowledgeStore``): the same base from a laptop file to a cluster.

The collections and their fields are in ``milvus_schema``, how a generation is written and committed in
``milvus_writer``, how one is read in ``milvus_snapshot``. This module finds the live generation (the highest commit
row), cleans up after a writer that died, starts writers and drops what no reader needs any more.

What is atomic: a generation becomes live with the insert of one commit row; a reader that read the commit rows
searches with that generation's row filter and never sees another generation's rows. What is not: several writers
at once (Milvus has no lock; docqa's writer lock is per machine: run ingests of one base from one machine, or one at
a time), and readers that keep a generation open for longer than ``index.gc_grace_seconds`` after
``index.keep_generations`` newer ones were committed (its removed rows are then deleted).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ingest.records import DocumentRecord
from ingest.settings import IndexSettings, StoreSettings
from ingest.store.knowledge_base import KnowledgeBaseError, KnowledgeBaseMissingError
from ingest.store.milvus.milvus_connection import GuardedClient, connect
from ingest.store.milvus.milvus_rows import (
    Commit,
    ensure_loaded,
    iterate,
    read_commits,
    read_documents,
    set_removed,
)
from ingest.store.milvus.milvus_schema import (
    NOT_REMOVED,
    CollectionNames,
    check_prefix,
    create_commits,
    create_epoch,
    default_prefix,
    dense_search_params,
    generation_name,
    visible,
)
from ingest.store.milvus.milvus_snapshot import MilvusSnapshot
from ingest.store.milvus.milvus_writer import MilvusWriter
from ingest.store.store_protocol import StoreInfo

log = logging.getLogger(__name__)
LOCAL_FILE = "milvus.db"


class MilvusStore:
    backend = "milvus"

    def __init__(self, settings: StoreSettings, uri: str, prefix: str, index_settings: IndexSettings | None = None):
        self.settings = settings
        self.uri = uri
        self.names = CollectionNames(check_prefix(prefix))
        self.index_settings = index_settings or IndexSettings()
        self.location = f"{uri} (collections {prefix}_*)"
        self._client: GuardedClient | None = None

    @classmethod
    def for_base(cls, settings: StoreSettings, kb_path: Path, base_key: str,
                 index_settings: IndexSettings | None = None) -> "MilvusStore":
        """The store of one named base: ``settings.uri`` (default: a Milvus Lite file in the base's folder) and
        ``settings.collection`` (default: derived from ``base_key``, the base's folder name)."""
        uri = settings.uri or str(Path(kb_path) / LOCAL_FILE)
        try:
            prefix = check_prefix(settings.collection or default_prefix(base_key))
        except ValueError as exc:
            raise KnowledgeBaseError(str(exc)) from None
        return cls(settings, uri, prefix, index_settings)

    @property
    def client(self) -> GuardedClient:
        if self._client is None:
            self._client = connect(self.uri, self.settings.token, self.settings.timeout_seconds)
        return self._client

    def _live(self) -> Commit | None:
        commits = read_commits(self.client, self.names)
        return commits[-1] if commits else None

    def _info(self, commit: Commit) -> StoreInfo:
        return commit.info(self.location, self.settings.dense_index)

    # --- reading -----------------------------------------------------------------------------------------------

    def live_generation(self) -> str | None:
        live = self._live()
        return generation_name(live.gen) if live else None

    def live_info(self) -> StoreInfo | None:
        live = self._live()
        return self._info(live) if live else None

    def live_documents(self) -> tuple[str | None, list[DocumentRecord]]:
        live = self._live()
        if live is None:
            return None, []
        documents = read_documents(self.client, self.names, live, visible(live.gen))
        return generation_name(live.gen), sorted((d.record for d in documents), key=lambda r: r.path)

    def open(self, embedder: str | None = None, dimension: int | None = None) -> MilvusSnapshot:
        live = self._live()
        if live is None:
            raise KnowledgeBaseMissingError(f"{self.location}: no knowledge base here yet (run `python -m ingest` "
                                            "with this store first)")
        self._check_embedder(live, embedder, dimension)
        return MilvusSnapshot(self.client, self.names, live, self._info(live),
                              dense_search_params(self.settings, self.index_settings))

    def _check_embedder(self, live: Commit, embedder: str | None, dimension: int | None) -> None:
        if embedder is not None and live.embedder != embedder:
            raise KnowledgeBaseError(f"knowledge base {self.location} was built with embedder {live.embedder!r}, "
                                     f"not {embedder!r}: use the same embedder, or rebuild it with "
                                     "`python -m ingest --rebuild`")
        if dimension is not None and live.dimension != dimension:
            raise KnowledgeBaseError(f"knowledge base {self.location} holds {live.dimension}-dim vectors, the "
                                     f"embedder makes {dimension}-dim ones: rebuild with `python -m ingest --rebuild`")

    # --- writing (the caller holds the base's WriterLock) --------------------------------------------------------

    def prepare_write(self, rebuild: bool = False) -> list[str]:
        """Delete what a writer that died left: epochs newer than the live one, rows of generations never
        committed, and its removal marks."""
        if not self.client.has_collection(self.names.commits):
            create_commits(self.client, self.names)
        live = self._live()
        for collection, epoch in self._epochs():
            if live is None or epoch > live.epoch:
                self.client.drop_collection(collection)
                log.info("removed collection %s left by an interrupted ingest", collection)
        if live is None:
            return []
        for collection, pk in ((self.names.chunks(live.epoch), "chunk_id"), (self.names.docs(live.epoch), "doc_pk")):
            ensure_loaded(self.client, collection)
            unfinished = f"gen_added > {live.gen}"
            if self.client.query(collection, filter=unfinished, output_fields=[pk], limit=1):
                self.client.delete(collection, filter=unfinished)
                log.info("removed rows of %s left by an interrupted ingest", collection)
            marked = [int(row[pk]) for row in iterate(
                self.client, collection, f"gen_removed > {live.gen} and gen_removed < {NOT_REMOVED}", [pk])]
            set_removed(self.client, collection, pk, marked, NOT_REMOVED)
        return []

    def _epochs(self) -> list[tuple[str, int]]:
        return [(name, epoch) for name in self.client.list_collections()
                if (epoch := self.names.epoch_of(name)) is not None]

    def rewrite_reason(self) -> str:
        return ""  # Milvus keeps its own indexes: nothing docqa derives can be missing

    def start_writer(self, embedder: str, dimension: int, rebuild: bool = False) -> MilvusWriter:
        live = self._live()
        if live is not None and not rebuild:
            if live.embedder != embedder or live.dimension != dimension:
                raise KnowledgeBaseError(
                    f"knowledge base {self.location} was built with embedder {live.embedder!r} ({live.dimension}-dim), "
                    f"not {embedder!r} ({dimension}-dim): rebuild it with --rebuild")
            for collection in (self.names.chunks(live.epoch), self.names.docs(live.epoch)):
                ensure_loaded(self.client, collection)
            documents = read_documents(self.client, self.names, live, visible(live.gen))
            return MilvusWriter(self.client, self.names, live, documents, self.settings, self.location,
                                self.settings.dense_index, new_epoch=False)
        # The first ingest or a rebuild: new collections, switched to by the commit row like any generation.
        epoch = max([live.epoch if live else 0] + [e for _, e in self._epochs()]) + 1
        create_epoch(self.client, self.names, epoch, dimension, self.settings, self.index_settings)
        now = time.time()
        base = Commit(gen=live.gen if live else 0, epoch=epoch, embedder=embedder, dimension=dimension,
                      n_documents=0, n_chunks=0, created_at=now, updated_at=now,
                      next_chunk_id=live.next_chunk_id if live else 1, next_doc_pk=live.next_doc_pk if live else 1)
        return MilvusWriter(self.client, self.names, base, [], self.settings, self.location,
                            self.settings.dense_index, new_epoch=True)

    def live_texts(self) -> list[str]:
        live = self._live()
        if live is None:
            return []
        return [row["text"] for row in iterate(self.client, self.names.chunks(live.epoch), visible(live.gen),
                                               ["text"])]

    def collect_garbage(self) -> list[str]:
        """Drop generations older than the live one beyond ``keep_generations``, each once it has been superseded
        for ``gc_grace_seconds``: their commit rows, the rows only they saw, and epochs no commit names."""
        commits = read_commits(self.client, self.names)
        if not commits:
            return []
        keep = max(self.index_settings.keep_generations, 0)
        older = commits[:-1]
        now = time.time()
        doomed = []
        for position, commit in enumerate(older[:max(0, len(older) - keep)]):
            superseded_at = commits[position + 1].updated_at
            if now - superseded_at >= self.index_settings.gc_grace_seconds:
                doomed.append(commit)
        if not doomed:
            return []
        self.client.delete(self.names.commits, ids=[c.gen for c in doomed])
        oldest_kept = commits[len(doomed)]
        live = commits[-1]
        # Rows removed by the oldest kept generation or before are seen by no kept generation.
        for collection in (self.names.chunks(live.epoch), self.names.docs(live.epoch)):
            self.client.delete(collection, filter=f"gen_removed <= {oldest_kept.gen}")
        kept_epochs = {c.epoch for c in commits[len(doomed):]}
        for collection, epoch in self._epochs():
            if epoch not in kept_epochs and epoch < live.epoch:
                self.client.drop_collection(collection)
        return [generation_name(c.gen) for c in doomed]
