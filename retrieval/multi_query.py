"""One ranking from the retrievals of several phrasings of a question (a follow-up and its standalone form)."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.fusion import reciprocal_rank_fusion
from retrieval.results import RetrievalResult, ScoredChunk


def fuse_results(results: Sequence[RetrievalResult], weights: Sequence[float], rrf_k: int,
                 top_k: int) -> RetrievalResult:
    """Reciprocal rank fusion of the results' passages (keyed by base and chunk id: the results may come from
    several knowledge bases, whose chunk ids overlap), ``top_k`` best. A passage keeps the
    stage scores from the first result that holds it, so list the question the gates judge first. The query is
    the first result's; timings add up per stage."""
    if not results:
        raise ValueError("fuse_results needs at least one retrieval result")
    if len(weights) != len(results):
        raise ValueError(f"{len(results)} results but {len(weights)} weights")
    seen: dict[tuple[str, int], ScoredChunk] = {}
    rankings: dict[str, list[tuple[tuple[str, int], float]]] = {}
    for i, result in enumerate(results):
        rankings[str(i)] = [((p.base, p.chunk.chunk_id), p.score) for p in result.passages]
        for passage in result.passages:
            seen.setdefault((passage.base, passage.chunk.chunk_id), passage)
    fused = reciprocal_rank_fusion(rankings, rrf_k, {str(i): w for i, w in enumerate(weights)})
    timings: dict[str, float] = {}
    for result in results:
        for stage, seconds in result.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    return RetrievalResult(query=results[0].query, passages=[seen[cid] for cid, _ in fused[:top_k]],
                           timings=timings)
