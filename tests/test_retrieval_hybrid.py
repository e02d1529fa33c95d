"""HybridRetriever logic with a fake embedder over real FAISS and BM25: stage scores, rerank pool, neighbour
merging, de-duplication, timings. Real-model end-to-end checks live in test_retrieval_end_to_end.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from retrieval_fakes import ReverseReranker, make_retriever

from ingest.records import Chunk
from retrieval.hybrid_retriever import HybridRetriever
from retrieval.neighbour_merge import join_chunks, widen
from retrieval.question_check import QuestionError


@pytest.fixture()
def retriever(tmp_path: Path) -> HybridRetriever:
    return make_retriever(tmp_path)


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
    with pytest.raises(QuestionError, match="the question is empty"):
        retriever.retrieve("   ")


def test_an_overlong_query_is_refused_before_it_is_embedded(retriever: HybridRetriever) -> None:
    with pytest.raises(QuestionError, match="100000 characters; the limit is 2000"):
        retriever.retrieve("问" * 100_000)


def test_convex_fusion_also_ranks_the_obvious_hit_first(retriever: HybridRetriever) -> None:
    retriever.settings.fusion = "convex"
    assert retriever.retrieve("FAISS 近邻搜索").passages[0].chunk.chunk_id == 5


def test_join_chunks_removes_the_overlap_between_consecutive_chunks() -> None:
    text = "第一句话。第二句话。第三句话。"
    a = Chunk(1, "d", "d.txt", text[0:10], 0, char_start=0, char_end=10)
    b = Chunk(2, "d", "d.txt", text[5:15], 1, char_start=5, char_end=15)
    assert join_chunks([a, b]) == text
    assert widen(a, [a, b], max_chars=15) == [a]  # the neighbour would exceed the limit
