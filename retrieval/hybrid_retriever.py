"""Hybrid retrieval: dense + keyword (BM25) candidates from the store, fused, optionally reranked, widened with
neighbouring chunks and de-duplicated. Every stage's score stays on the returned ``ScoredChunk``s. The store may be
the FAISS folder or Milvus (``ingest/store/store_protocol.py``): fusion, reranking and merging are the same code."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ingest.settings import LimitSettings
from ingest.store.store_protocol import StoreSnapshot
from retrieval.fusion import convex_combination, reciprocal_rank_fusion
from retrieval.neighbour_merge import merge_and_dedupe
from retrieval.question_check import validate_question
from retrieval.reranker import Reranker
from retrieval.results import RetrievalResult, ScoredChunk
from retrieval.settings import RetrievalSettings

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder


class HybridRetriever:
    def __init__(self, kb: StoreSnapshot, embedder: Embedder, settings: RetrievalSettings,
                 reranker: Reranker | None = None, limits: LimitSettings | None = None, base: str = ""):
        """``base``: the knowledge base's name, put on every passage returned (``ScoredChunk.base``)."""
        self.kb = kb
        self.base = base
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker
        self.limits = limits or LimitSettings()

    def dense(self, query: str, k: int | None = None) -> list[tuple[int, float]]:
        vector = self.embedder.encode_queries([query])[0]
        return self.kb.dense_search(vector, self.settings.dense_k if k is None else k)

    def keyword(self, query: str, k: int | None = None) -> list[tuple[int, float]]:
        return self.kb.keyword_search(query, self.settings.bm25_k if k is None else k)

    def fuse(self, dense: list[tuple[int, float]], bm25: list[tuple[int, float]]) -> list[tuple[int, float]]:
        rankings = {"dense": dense, "bm25": bm25}
        weights = {"dense": self.settings.fusion_dense_weight, "bm25": self.settings.fusion_bm25_weight}
        if self.settings.fusion == "convex":
            return convex_combination(rankings, weights)
        return reciprocal_rank_fusion(rankings, self.settings.rrf_k, weights)

    def retrieve(self, query: str, top_k: int | None = None, rerank: bool | None = None) -> RetrievalResult:
        """The ``top_k`` best passages for ``query``; ``rerank`` overrides whether the reranker runs.
        ``timings`` holds seconds per stage: embed, dense, bm25, fuse, rerank, merge, total."""
        query = validate_question(query, self.limits)
        top_k = self.settings.top_k if top_k is None else top_k
        use_reranker = self.reranker is not None and (self.settings.rerank if rerank is None else rerank)
        timings: dict[str, float] = {}
        start = clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = now - clock
            clock = now

        vector = self.embedder.encode_queries([query])[0]
        lap("embed")
        dense = self.kb.dense_search(vector, self.settings.dense_k)
        lap("dense")
        bm25 = self.keyword(query)
        lap("bm25")
        ranked = self._scored(dense, bm25, self.fuse(dense, bm25))
        lap("fuse")
        if use_reranker and self.reranker is not None:
            ranked = self._rerank(self.reranker, query, ranked)
        lap("rerank")
        lookup = self.kb.neighbours if self.settings.merge_neighbours else None
        passages = merge_and_dedupe(ranked, top_k, lookup, self.settings.neighbour_window,
                                    self.settings.context_max_chars)
        lap("merge")
        timings["total"] = time.perf_counter() - start
        return RetrievalResult(query=query, passages=passages, timings=timings)

    def _scored(self, dense: list[tuple[int, float]], bm25: list[tuple[int, float]],
                fused: list[tuple[int, float]]) -> list[ScoredChunk]:
        chunks = {c.chunk_id: c for c in self.kb.get_chunks([cid for cid, _ in fused])}
        dense_at = {cid: (rank, score) for rank, (cid, score) in enumerate(dense, start=1)}
        bm25_at = {cid: (rank, score) for rank, (cid, score) in enumerate(bm25, start=1)}
        scored = []
        for cid, fused_score in fused:
            if cid not in chunks:
                continue
            passage = ScoredChunk(chunk=chunks[cid], fused_score=fused_score, fused_rank=len(scored) + 1,
                                  base=self.base)
            if cid in dense_at:
                passage.dense_rank, passage.dense_score = dense_at[cid]
            if cid in bm25_at:
                passage.bm25_rank, passage.bm25_score = bm25_at[cid]
            scored.append(passage)
        return scored

    def _rerank(self, reranker: Reranker, query: str, ranked: list[ScoredChunk]) -> list[ScoredChunk]:
        """Rescore the first ``rerank_candidates`` distinct passages; the rest keep their fused order after them."""
        pool: list[ScoredChunk] = []
        seen: set[str] = set()
        rest: list[ScoredChunk] = []
        for passage in ranked:
            key = " ".join(passage.chunk.text.split())
            if len(pool) < self.settings.rerank_candidates and key not in seen:
                seen.add(key)
                pool.append(passage)
            else:
                rest.append(passage)
        for passage, score in zip(pool, reranker.score(query, [p.chunk.text for p in pool])):
            passage.rerank_score = score
        pool.sort(key=lambda p: (-(p.rerank_score or 0.0), p.fused_rank or 0))
        return pool + rest
