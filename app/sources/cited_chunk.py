"""A citation's chunk looked up again in its base's live generation, by id, checked against the document it cited.

A link to a citation outlives the answer: the base may have been re-indexed (chunk ids reused for other text) or
the document deleted since. The link carries the cited document's content hash (a prefix), so a chunk id that now
belongs to other content is refused rather than shown as the source.
"""

from __future__ import annotations

from ingest.records import Chunk
from ingest.store.store_protocol import KnowledgeStore

# Characters of the content hash a link carries: enough to tell documents apart, short in a URL.
DOC_PREFIX_CHARS = 16


class CitationGone(LookupError):
    """The cited chunk is no longer in the base, or its id now holds another document's text."""


def doc_prefix(chunk: Chunk) -> str:
    return chunk.doc_id[:DOC_PREFIX_CHARS]


def cited_chunk(store: KnowledgeStore, chunk_id: int, doc: str) -> Chunk:
    """The chunk ``chunk_id`` of the live generation when it still belongs to the document whose content hash
    starts with ``doc``; CitationGone otherwise. KnowledgeBaseError when the base cannot be opened."""
    snapshot = store.open()
    try:
        found = snapshot.get_chunks([chunk_id])
    finally:
        snapshot.close()
    if not found or not doc or not found[0].doc_id.startswith(doc):
        raise CitationGone(f"{store.location}: the cited passage is no longer in the knowledge base (its document "
                           "was deleted or re-indexed since the answer was given)")
    return found[0]
