"""Flag (never refuse) answer sentences weakly supported by the passages they cite: a support score per
sentence, shown with the answer (prompts/grounding_check.py; ``min_support_score``)."""

from __future__ import annotations

from collections.abc import Sequence

from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.grounding_check import SupportScorer, check_answer
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage


class SentenceSupportCheck:
    name = "sentence_support"

    def __init__(self, settings: AnswerSettings, scorer: SupportScorer) -> None:
        self.settings = settings
        self.scorer = scorer

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        a = self.settings
        checks = check_answer(draft.text, list(passages), self.scorer, a.min_support_score,
                              skip=(a.refusal_zh, a.refusal_en))
        signals = {"lowest": min(c.support_score for c in checks)} if checks else {}
        return Verdict.ok(signals=signals, sentence_checks=tuple(checks))


def build(parts: CheckParts) -> AnswerCheck:
    return SentenceSupportCheck(parts.settings, parts.support)
