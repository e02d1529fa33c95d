"""LangChain ``BaseRetriever`` over ``HybridRetriever`` (one base) or ``MultiBaseRetriever`` (several), for chains
and agents built with LangChain."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retrieval.hybrid_retriever import HybridRetriever
from retrieval.multi_base_retriever import MultiBaseRetriever
from retrieval.results import ScoredChunk


def to_document(passage: ScoredChunk) -> Document:
    """A LangChain Document whose content is the passage's context text, with source and every score."""
    chunk = passage.chunk
    metadata: dict[str, Any] = {
        "source": chunk.source,
        "base": passage.base,
        "page": chunk.page,
        "heading": chunk.heading,
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
        "score": passage.score,
        "scores": {"dense": passage.dense_score, "bm25": passage.bm25_score,
                   "fused": passage.fused_score, "rerank": passage.rerank_score},
    }
    return Document(page_content=passage.text, metadata=metadata)


class DocqaRetriever(BaseRetriever):
    """``invoke(question)`` → the hybrid retriever's top passages as Documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: HybridRetriever | MultiBaseRetriever
    top_k: int | None = None

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [to_document(p) for p in self.retriever.retrieve(query, top_k=self.top_k).passages]
