"""Hallucination guards: the evidence gate and the sentence-support check."""

from __future__ import annotations

import pytest
from answer_fakes import scored

from ingest.testing.fake_embedder import FakeEmbedder
from prompts.evidence_gate import check_evidence
from prompts.grounding_check import EmbeddingSupportScorer, check_answer
from prompts.templates import PackedPassage


def test_gate_refuses_below_threshold_and_when_nothing_was_retrieved():
    passages = [scored("a", 1, dense=0.71), scored("b", 2, dense=0.83)]
    assert check_evidence(passages, 0.8, "dense").answerable
    decision = check_evidence(passages, 0.85, "dense")
    assert not decision.answerable and decision.best_score == pytest.approx(0.83)
    assert "0.830" in decision.reason
    assert not check_evidence([], 0.0, "dense").answerable
    assert not check_evidence([scored("c", dense=None)], 0.0, "dense").answerable


def test_gate_reads_the_configured_score_and_rejects_unknown_fields():
    passage = scored("a", dense=0.2)
    passage.rerank_score = 5.0
    assert check_evidence([passage], 1.0, "rerank").answerable
    assert not check_evidence([passage], 1.0, "dense").answerable
    with pytest.raises(ValueError, match="unknown evidence score"):
        check_evidence([passage], 1.0, "magic")


def test_sentences_are_scored_against_the_passages_they_cite():
    packed = [PackedPassage(1, scored("通义千问模型由阿里云开发。它支持多种语言。", 1), "通义千问模型由阿里云开发。它支持多种语言。"),
              PackedPassage(2, scored("北京是中国的首都。", 2), "北京是中国的首都。")]
    answer = "通义千问模型由阿里云开发[1]。北京是中国的首都[1]。月球上有很多奶酪[9]。"
    checks = check_answer(answer, packed, EmbeddingSupportScorer(FakeEmbedder(dimension=256)), min_support=0.6)
    assert [c.cited for c in checks] == [[1], [1], []]
    assert checks[0].supported and checks[0].support_score > 0.9
    # True in general, but passage 1 does not say it: flagged.
    assert not checks[1].supported
    # Invalid citation dropped; scored against all passages and still unsupported.
    assert checks[2].sentence == "月球上有很多奶酪。" and not checks[2].supported


def test_refusal_sentence_and_bare_citations_are_not_checked():
    packed = [PackedPassage(1, scored("内容。"), "内容。")]
    checks = check_answer("根据现有文档无法回答该问题。\n[1]", packed, EmbeddingSupportScorer(FakeEmbedder(dimension=256)),
                          0.5, skip=("根据现有文档无法回答该问题。",))
    assert checks == []
