"""Gate: refuse without calling the LLM when retrieval found nothing close enough to be evidence
(prompts/evidence_gate.py; ``min_evidence_score`` on ``evidence_score_field``, per question from the sidebar)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from prompts.checks.base import PassageGate, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.evidence_gate import check_evidence
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage
from retrieval.results import ScoredChunk


class EvidenceScoreGate:
    name = "evidence_score"

    def __init__(self, settings: AnswerSettings) -> None:
        self.settings = settings

    def check_passages(self, question: Question, passages: Sequence[PackedPassage],
                       retrieved: Sequence[ScoredChunk]) -> Verdict:
        minimum = question.overrides.get("min_evidence_score", self.settings.min_evidence_score)
        gate = check_evidence(list(retrieved), minimum, self.settings.evidence_score_field)
        signals = {"best_score": gate.best_score} if math.isfinite(gate.best_score) else {}
        if not gate.answerable:
            return Verdict.refuse(f"evidence gate: {gate.reason}", signals=signals)
        return Verdict.ok(signals=signals)


def build(parts: CheckParts) -> PassageGate:
    return EvidenceScoreGate(parts.settings)
