"""Judge the answer, not only the evidence (prompts/claim_check.py).

- A figure that is the part a cited sentence sets apart, given for a question about the rest ("有答案的" answered
  "37" where the sentence says 412 questions, 37 without answers), is corrected to total − part ("375 (412 − 37 =
  375)"), by the sentence's own figures.
- When ``claim_verdict`` is on (off by default), the local LLM is asked whether the (corrected) answer is right by
  the cited sentences: its p(yes) is a signal for the acceptance decision (prompts/acceptance.py); below
  ``min_claim_yes`` a count whose cited sentence gives other figures too is a defect to ask the model about once
  more ("the wrong one of two numbers"), and below ``refuse_claim_yes`` (0 by default) the answer is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prompts.answer_repair import doubtful_figure
from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.full_list import first_cited
from prompts.checks.registry import CheckParts
from prompts.claim_check import (apply_derivation, claim_messages, cited_sentences_with_figures,
                                 complement_derivation, verify_claim)
from prompts.evidence_match import cited_anchors, cited_evidence
from prompts.evidence_verification import YesNoScorer
from prompts.question_shape import asked_for
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage


class ClaimCheck:
    name = "claim"

    def __init__(self, settings: AnswerSettings, scorer: YesNoScorer | None) -> None:
        self.settings = settings
        self.scorer = scorer

    def _asks_model(self) -> bool:
        """Whether the model's verdict runs (read each time: the pipeline's [answer] section may change in place)."""
        return self.scorer is not None and (self.settings.claim_verdict or self.settings.refuse_claim_yes > 0)

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        a, packed = self.settings, list(passages)
        evidence = cited_evidence(draft.text, packed, a.evidence_neighbours)
        signals: dict[str, float] = {}
        derivation = (complement_derivation(question.text, draft.text, cited_sentences_with_figures(evidence),
                                            question.language)
                      if draft.described_as == "the answer" else None)
        if derivation is not None:
            draft = replace(draft, text=apply_derivation(draft.text, derivation, question.language))
            signals["derived"] = 1.0
        if not self._asks_model():
            return Verdict.ok(draft, signals=signals)
        p_yes = verify_claim(self.scorer, question.text, draft.text, evidence, question.language)
        signals["p_yes"] = p_yes
        defect = ""
        if p_yes < a.min_claim_yes and derivation is None:
            defect = doubtful_figure(draft.text, asked_for(question.text, question.language),
                                     cited_anchors(draft.text, packed), question.language, first_cited(draft.text, packed))
        if p_yes < a.refuse_claim_yes:
            return Verdict.refuse(f"{draft.described_as} does not answer this question: asked whether the answer is "
                                  f"right by the cited sentences, the model says no (p(yes) {p_yes:.2f} < "
                                  f"{a.refuse_claim_yes}); draft answer: {draft.text}", draft, signals=signals,
                                  defect=defect)
        return Verdict.ok(draft, signals=signals, defect=defect)

    def warm_prompts(self, language: str) -> list[list[dict]]:
        if not self._asks_model():
            return []
        return [claim_messages(q, q, q, language) for q in ("1", "2")]


def build(parts: CheckParts) -> AnswerCheck:
    return ClaimCheck(parts.settings, parts.yes_no)
