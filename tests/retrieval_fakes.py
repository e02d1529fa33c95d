"""Fakes shared by the retrieval tests: a hashed bag-of-words embedder and an in-memory knowledge base over real
FAISS, so retrieval logic is tested fast without loading models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from app.config import RetrievalSettings
from ingest.records import Chunk
from ingest.store.dense_search import dense_search
from ingest.store.keyword_index import KeywordIndex, build_keyword_index
from ingest.testing.fake_embedder import FakeEmbedder
from retrieval.hybrid_retriever import HybridRetriever

DIM = 64


class FakeKB:
    """A store snapshot in memory: real FAISS and a real BM25 index over ``chunks``, no catalog files."""

    def __init__(self, chunks: Sequence[Chunk], embedder: FakeEmbedder, keyword_index: KeywordIndex):
        self.chunks = {c.chunk_id: c for c in chunks}
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
        self.index.add_with_ids(embedder.encode_passages([c.text for c in chunks]),
                                np.array([c.chunk_id for c in chunks], dtype=np.int64))
        self.keyword_index = keyword_index

    def dense_search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return dense_search(self.index, vector, k)

    def keyword_search(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.keyword_index.search(query, k)

    def get_chunks(self, ids: Sequence[int]) -> list[Chunk]:
        return [self.chunks[i] for i in ids if i in self.chunks]

    def neighbours(self, chunk: Chunk, window: int = 1) -> list[Chunk]:
        return sorted((c for c in self.chunks.values()
                       if c.doc_id == chunk.doc_id and abs(c.ordinal - chunk.ordinal) <= window),
                      key=lambda c: c.ordinal)


class ReverseReranker:
    """Scores passages in reverse fused order: makes the rerank stage visible."""

    name = "reverse"

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def score(self, query: str, passages: list[str]) -> list[float]:
        self.seen.append(passages)
        return [float(i) for i in range(len(passages))]


def _chunk(cid: int, doc: str, ordinal: int, text: str, heading: list[str] | None = None) -> Chunk:
    return Chunk(chunk_id=cid, doc_id=doc, source=f"{doc}.md", text=text, ordinal=ordinal,
                 heading_path=heading or [], char_start=0, char_end=0)


CHUNKS = [
    _chunk(1, "a", 0, "量化把模型权重压缩到 4 位。", ["量化"]),
    _chunk(2, "a", 1, "GPTQ 与 AWQ 是常见的量化方法。", ["量化"]),
    _chunk(3, "a", 2, "KV cache 保存注意力的键和值。", ["推理"]),
    _chunk(4, "b", 0, "检索增强生成先检索文档再生成答案。"),
    _chunk(5, "b", 1, "向量数据库 FAISS 支持近邻搜索。"),
    _chunk(6, "c", 0, "检索增强生成先检索文档再生成答案。"),  # same text as 4 in another document
    _chunk(7, "d", 0, "上下文窗口长度为 32768 个 token。"),
]



def make_retriever(tmp_path: Path) -> HybridRetriever:
    embedder = FakeEmbedder(dimension=DIM, features="tokens")
    build_keyword_index([c.chunk_id for c in CHUNKS], [c.text for c in CHUNKS], tmp_path / "bm25")
    settings = RetrievalSettings(top_k=3, dense_k=5, bm25_k=5, rerank=False, rerank_candidates=3)
    return HybridRetriever(FakeKB(CHUNKS, embedder, KeywordIndex.load(tmp_path / "bm25")), embedder, settings)
