"""Repair: an answer of citation markers alone ("[1]") becomes a labelled quote of the cited passage's sentence
that best matches the question (prompts/marker_only_answer.py); the checks after it judge the quote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prompts.answer_repair import repair_note
from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.marker_only_answer import is_markers_only, quote_cited_sentence
from prompts.templates import PackedPassage


class MarkerQuoteCheck:
    name = "marker_quote"

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        if not is_markers_only(draft.text):
            return Verdict.ok(signals={"markers_only": 0.0})
        quote = quote_cited_sentence(question.text, draft.text, list(passages), question.language)
        repaired = replace(draft, text=quote, described_as="the quoted sentence") if quote is not None else None
        return Verdict.ok(repaired, signals={"markers_only": 1.0},
                          defect=repair_note("markers_only", question.language))


def build(parts: CheckParts) -> AnswerCheck:
    return MarkerQuoteCheck()
