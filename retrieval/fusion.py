"""Fusing ranked lists from several retrievers into one ranking.

Reciprocal rank fusion (Cormack, Clarke & Büttcher 2009) needs no score calibration between BM25 and cosine:
score(d) = Σ_lists weight / (k + rank(d)), ranks starting at 1. The convex combination of min-max-normalised
scores (Bruch et al. 2023) is the alternative the benchmark compares it with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

Ranking = Sequence[tuple[int, float]]
# An item id: a chunk id, or (base, chunk id) when the lists come from several knowledge bases; ids are compared
# to break ties, so they must be orderable.
Id = TypeVar("Id", bound=Any)


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[tuple[Id, float]]], k: int,
                           weights: Mapping[str, float] | None = None) -> list[tuple[Id, float]]:
    """Fuse ``{name: [(id, score), ...best first]}``; returns (id, fused score), best first, ties by id."""
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    fused: dict[Id, float] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, (item, _score) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def _min_max(ranking: Ranking) -> dict[int, float]:
    if not ranking:
        return {}
    scores = [score for _, score in ranking]
    low, high = min(scores), max(scores)
    span = high - low
    return {item: (score - low) / span if span > 0 else 1.0 for item, score in ranking}


def convex_combination(rankings: Mapping[str, Ranking],
                       weights: Mapping[str, float] | None = None) -> list[tuple[int, float]]:
    """Σ weight × min-max-normalised score (0 where a list lacks the id); best first, ties by id."""
    fused: dict[int, float] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for item, score in _min_max(ranking).items():
            fused[item] = fused.get(item, 0.0) + weight * score
        for item, _ in ranking:
            fused.setdefault(item, 0.0)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))
