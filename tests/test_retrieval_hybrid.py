"""HybridRetriever logic with a fake embedder over real FAISS and BM25: stage scores, rerank pool, neighbour
merging, de-duplication, timings. Real-model end-to-end checks live in test_retrieval_end_to_end.py."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
import pytest

from app.config import RetrievalSettings
from ingest.records import Chunk
from retrieval.hybrid_retriever import HybridRetriever
from retrieval.keyword_index import KeywordIndex, build_keyword_index
from retrieval.neighbour_merge import join_chunks, widen
from retrieval.text_tokenizer import tokenize

DIM = 64


class FakeEmbedder:
    """Hashed bag of keyword tokens: similar texts share tokens, so cosine roughly tracks overlap."""

    name = "fake"
    dimension = DIM

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(DIM, dtype=np.float32)
        for token in tokenize(text):
            vector[int(hashlib.md5(token.encode()).hexdigest(), 16) % DIM] += 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-9)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self.encode_queries(texts)


class FakeKB:
    def __init__(self, chunks: Sequence[Chunk], embedder: FakeEmbedder):
        self.chunks = {c.chunk_id: c for c in chunks}
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
        self.index.add_with_ids(embedder.encode_passages([c.text for c in chunks]),
                                np.array([c.chunk_id for c in chunks], dtype=np.int64))

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


@pytest.fixture()
def retriever(tmp_path: Path) -> HybridRetriever:
    embedder = FakeEmbedder()
    build_keyword_index([c.chunk_id for c in CHUNKS], [c.text for c in CHUNKS], tmp_path / "bm25")
    settings = RetrievalSettings(top_k=3, dense_k=5, bm25_k=5, rerank=False, rerank_candidates=3)
    return HybridRetriever(FakeKB(CHUNKS, embedder), embedder, KeywordIndex.load(tmp_path / "bm25"), settings)


def test_every_stage_score_is_kept(retriever: HybridRetriever) -> None:
    result = retriever.retrieve("上下文窗口 32768")
    top = result.passages[0]
    assert top.chunk.chunk_id == 7
    assert top.dense_rank == 1 and top.bm25_rank == 1 and top.fused_rank == 1
    assert top.dense_score is not None and top.bm25_score is not None and top.fused_score is not None
    assert top.rerank_score is None
    assert set(result.timings) == {"embed", "dense", "bm25", "fuse", "rerank", "merge", "total"}
    assert all(v >= 0 for v in result.timings.values())


def test_duplicate_texts_are_returned_once(retriever: HybridRetriever) -> None:
    texts = [p.chunk.text for p in retriever.retrieve("检索增强生成", top_k=5).passages]
    assert len(texts) == len(set(texts))


def test_neighbours_of_the_same_heading_are_merged_and_not_repeated(retriever: HybridRetriever) -> None:
    passages = retriever.retrieve("GPTQ 量化方法", top_k=4).passages
    top = passages[0]
    assert top.chunk.chunk_id == 2
    assert top.context_text is not None and "4 位" in top.context_text and "KV cache" not in top.context_text
    assert 1 not in [p.chunk.chunk_id for p in passages]  # already inside the first passage's context


def test_merge_off_keeps_plain_chunks(retriever: HybridRetriever) -> None:
    retriever.settings.merge_neighbours = False
    passages = retriever.retrieve("GPTQ 量化方法", top_k=4).passages
    assert all(p.context_text is None for p in passages)
    assert {1, 2} <= {p.chunk.chunk_id for p in passages}


def test_reranker_sees_only_the_candidate_pool_and_decides_the_order(retriever: HybridRetriever) -> None:
    reranker = ReverseReranker()
    retriever.reranker = reranker
    retriever.settings.merge_neighbours = False
    plain = retriever.retrieve("量化 检索 上下文", top_k=3, rerank=False).passages
    reranked = retriever.retrieve("量化 检索 上下文", top_k=3, rerank=True).passages
    assert len(reranker.seen) == 1 and len(reranker.seen[0]) == 3
    assert [p.chunk.chunk_id for p in reranked] == [p.chunk.chunk_id for p in reversed(plain)]
    assert all(p.rerank_score is not None for p in reranked)


def test_empty_query_is_refused(retriever: HybridRetriever) -> None:
    with pytest.raises(ValueError, match="empty query"):
        retriever.retrieve("   ")


def test_unknown_fusion_method_is_a_clear_error(retriever: HybridRetriever) -> None:
    with pytest.raises(ValueError, match="retrieval.fusion"):
        HybridRetriever(retriever.kb, retriever.embedder, retriever.keyword_index, RetrievalSettings(fusion="max"))


def test_convex_fusion_also_ranks_the_obvious_hit_first(retriever: HybridRetriever) -> None:
    retriever.settings.fusion = "convex"
    assert retriever.retrieve("FAISS 近邻搜索").passages[0].chunk.chunk_id == 5


def test_join_chunks_removes_the_overlap_between_consecutive_chunks() -> None:
    text = "第一句话。第二句话。第三句话。"
    a = Chunk(1, "d", "d.txt", text[0:10], 0, char_start=0, char_end=10)
    b = Chunk(2, "d", "d.txt", text[5:15], 1, char_start=5, char_end=15)
    assert join_chunks([a, b]) == text
    assert widen(a, [a, b], max_chars=15) == [a]  # the neighbour would exceed the limit
