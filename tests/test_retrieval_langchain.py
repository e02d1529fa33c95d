"""The LangChain retriever returns Documents with source, heading, chunk id and scores (fake embedder)."""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document
from retrieval_fakes import make_retriever

from retrieval.langchain_retriever import DocqaRetriever


def test_invoke_returns_documents_with_metadata(tmp_path: Path) -> None:
    docs = DocqaRetriever(retriever=make_retriever(tmp_path), top_k=2).invoke("上下文窗口 32768")
    assert 1 <= len(docs) <= 2 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert "32768" in top.page_content
    assert top.metadata["source"] == "d.md" and top.metadata["chunk_id"] == 7
    assert top.metadata["scores"]["dense"] is not None and top.metadata["scores"]["bm25"] is not None
    assert {"page", "heading", "score", "doc_id"} <= set(top.metadata)
