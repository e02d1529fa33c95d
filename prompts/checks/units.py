"""Repair: a bare figure answering a count or a quantity takes the unit its cited sentence writes it with ("12 [2]"
to "多少人" becomes "12名 [2]"; prompts/answer_repair.with_units), so the answer states the unit asked. Never
refuses; reports whether a figure-asking question got an answer without any figure (a feature of the acceptance
decision)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prompts.answer_repair import with_units
from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.citations import remove_invalid_citations
from prompts.evidence_match import cited_anchors
from prompts.quantities import read_quantities
from prompts.question_shape import asked_for
from prompts.templates import PackedPassage


class UnitsCheck:
    name = "units"

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        asked = asked_for(question.text, question.language)
        has_figure = bool(read_quantities(remove_invalid_citations(draft.text, set())))
        signals = {"shape_mismatch": float(asked.numeric and not has_figure)}
        if draft.described_as != "the answer":  # a quote stands as the passage wrote it
            return Verdict.ok(signals=signals)
        fixed = with_units(draft.text, asked, cited_anchors(draft.text, list(passages)))
        if fixed == draft.text:
            return Verdict.ok(signals={**signals, "unit_added": 0.0})
        return Verdict.ok(replace(draft, text=fixed), signals={**signals, "unit_added": 1.0})


def build(parts: CheckParts) -> AnswerCheck:
    return UnitsCheck()
