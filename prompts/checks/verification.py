"""Refuse when the local LLM, shown only the cited sentences and the question, says they do not answer it
(prompts/evidence_verification.py; p(yes) thresholds per language in ``[answer]``). Needs a generator that can
score a yes/no (llama.cpp); with another one the check passes."""

from __future__ import annotations

from collections.abc import Sequence

from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.evidence_match import cited_evidence
from prompts.evidence_verification import YesNoScorer, verification_messages, verify_evidence
from prompts.language import passages_language
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage


class VerificationCheck:
    name = "verification"

    def __init__(self, settings: AnswerSettings, scorer: YesNoScorer | None) -> None:
        self.settings = settings
        self.scorer = scorer

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        a, packed = self.settings, list(passages)
        threshold = a.verification_threshold(question.language, passages_language(packed, a.zh_min_cjk_share),
                                             draft.first_pass)
        if threshold <= 0 or self.scorer is None:
            return Verdict.ok()
        evidence = cited_evidence(draft.text, packed, a.evidence_neighbours)
        p_yes = verify_evidence(self.scorer, question.text, evidence, question.language)
        if p_yes < threshold:
            return Verdict.refuse(f"{draft.described_as} does not answer this question: asked whether the cited "
                                  f"sentences answer the question, the model says no (p(yes) {p_yes:.2f} < "
                                  f"{threshold}); draft answer: {draft.text}", signals={"p_yes": p_yes})
        return Verdict.ok(signals={"p_yes": p_yes})

    def warm_prompts(self, language: str) -> list[list[dict]]:
        if self.scorer is None or self.settings.verification_threshold(language) <= 0:
            return []
        return [verification_messages(q, q, language) for q in ("1", "2")]


def build(parts: CheckParts) -> AnswerCheck:
    return VerificationCheck(parts.settings, parts.yes_no)
