"""Rank fusion: reciprocal rank fusion and the convex score combination."""

from __future__ import annotations

import pytest

from retrieval.fusion import convex_combination, reciprocal_rank_fusion


def test_rrf_scores_are_sums_of_reciprocal_ranks() -> None:
    fused = dict(reciprocal_rank_fusion({"a": [(1, 9.0), (2, 8.0)], "b": [(2, 0.9), (3, 0.1)]}, k=60))
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1] == pytest.approx(1 / 61)
    assert fused[3] == pytest.approx(1 / 62)


def test_rrf_prefers_items_both_lists_agree_on_and_ignores_score_scales() -> None:
    ranking = reciprocal_rank_fusion({"dense": [(1, 0.9), (2, 0.8), (3, 0.7)],
                                      "bm25": [(3, 250.0), (2, 3.0), (4, 1.0)]}, k=60)
    assert {item for item, _ in ranking[:2]} == {2, 3}


def test_rrf_weights_and_ties() -> None:
    ranking = reciprocal_rank_fusion({"a": [(5, 1.0)], "b": [(7, 1.0)]}, k=10)
    assert [item for item, _ in ranking] == [5, 7]  # equal scores: lower id first, deterministic
    weighted = reciprocal_rank_fusion({"a": [(5, 1.0)], "b": [(7, 1.0)]}, k=10, weights={"b": 2.0})
    assert weighted[0][0] == 7
    with pytest.raises(ValueError):
        reciprocal_rank_fusion({"a": []}, k=-1)


def test_convex_combination_normalises_each_list() -> None:
    ranking = convex_combination({"dense": [(1, 0.9), (2, 0.5)], "bm25": [(2, 30.0), (3, 10.0)]})
    scores = dict(ranking)
    assert scores[2] == pytest.approx(1.0)  # 0 (min of dense) + 1 (max of bm25)
    assert scores[1] == pytest.approx(1.0)
    assert scores[3] == pytest.approx(0.0)
    assert set(scores) == {1, 2, 3}


def test_empty_inputs() -> None:
    assert reciprocal_rank_fusion({"a": [], "b": []}, k=60) == []
    assert convex_combination({}) == []
