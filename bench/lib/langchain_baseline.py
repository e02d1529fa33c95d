"""The naive RAG retriever of LangChain's tutorials, as the benchmark's baseline.

RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200) with its default separators, a
langchain_community FAISS store, ``similarity_search`` — with the SAME embedder as docqa, so the comparison
measures the retrieval design, not the model. Passage vectors are cached (sqlite, keyed by text hash).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.embedding.embedding_cache import EmbeddingCache

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder

TUTORIAL_CHUNK_SIZE = 1000
TUTORIAL_CHUNK_OVERLAP = 200


class CachedEmbeddings(Embeddings):
    """Our Embedder as LangChain Embeddings, with a persistent passage-vector cache."""

    def __init__(self, embedder: Embedder, cache_path: Path, batch_size: int = 16):
        self.embedder = embedder
        self.batch_size = batch_size
        self.cache = EmbeddingCache(cache_path, f"langchain-baseline|{embedder.name}", embedder.dimension)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        from ingest.embedding.embedding_cache import text_hash

        found = self.cache.get_many(texts)
        missing = list(dict.fromkeys(t for t in texts if text_hash(t) not in found))
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start:start + self.batch_size]
            vectors = np.asarray(self.embedder.encode_passages(batch), dtype=np.float32)
            self.cache.put_many(batch, vectors)
            found.update((text_hash(t), v) for t, v in zip(batch, vectors))
        return [found[text_hash(t)].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return np.asarray(self.embedder.encode_queries([text])[0], dtype=np.float32).tolist()


class NaiveLangChainRetriever:
    def __init__(self, texts: dict[str, str], embeddings: CachedEmbeddings):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # langchain_community announces its own deprecation on import
            from langchain_community.vectorstores import FAISS
        splitter = RecursiveCharacterTextSplitter(chunk_size=TUTORIAL_CHUNK_SIZE,
                                                  chunk_overlap=TUTORIAL_CHUNK_OVERLAP)
        docs = splitter.split_documents(
            [Document(page_content=text, metadata={"doc_id": doc_id}) for doc_id, text in texts.items()])
        self.n_chunks = len(docs)
        self.store = FAISS.from_documents(docs, embeddings)

    def search(self, query: str, k: int) -> list[Document]:
        return self.store.similarity_search(query, k=k)
