"""Settings of retrieval: candidate counts, fusion, reranking, neighbour merging (composed by app/config.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ingest.settings import SettingsSection

MAXSIM = "maxsim"


class RetrievalSettings(SettingsSection):
    # Passages returned (after merging neighbours).
    top_k: int = Field(5, ge=1, le=100)
    dense_k: int = Field(30, ge=1)
    bm25_k: int = Field(30, ge=0)
    # Reciprocal-rank-fusion constant (Cormack et al. 2009 use 60).
    rrf_k: int = Field(60, ge=1)
    # Off by default: MaxSim reranking raises retrieval hit@1 but the packaged 1.5B LLM answered worse from the
    # reranked passages (bench/RESULTS.md, bench/RESULTS_ANSWER.md). Switch it on per question, in the sidebar,
    # with --rerank, or here for a stronger LLM.
    rerank: bool = False
    # "maxsim" = late interaction over the embedder's token vectors (offline default);
    # anything else is a sentence_transformers.CrossEncoder model path or hub name.
    reranker: str = MAXSIM
    rerank_candidates: int = Field(20, ge=1)
    merge_neighbours: bool = True
    # Convex (weighted sum of per-query min-max-normalised scores) beat RRF on all three sets (bench/RESULTS.md).
    fusion: Literal["convex", "rrf"] = "convex"
    fusion_dense_weight: float = Field(1.0, ge=0)
    fusion_bm25_weight: float = Field(1.0, ge=0)
    # Chunks on each side of a hit (same document and heading) merged into its context_text ...
    neighbour_window: int = Field(1, ge=0)
    # ... up to this many characters, so top_k merged passages still fit the answer's context budget.
    context_max_chars: int = Field(1000, ge=100)
