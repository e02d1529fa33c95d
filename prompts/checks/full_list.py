"""A "which ones" question answered with some of the items its cited sentence lists ("分哪几步" answered with one
step of three; three of seven directors): a defect the model is asked to fix once more (the answer should give the
full list; prompts/answer_repair.incomplete_list). Never refuses."""

from __future__ import annotations

from collections.abc import Sequence

from prompts.answer_repair import incomplete_list
from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.citations import parse_citations
from prompts.evidence_match import cited_anchors
from prompts.question_shape import asked_for
from prompts.templates import PackedPassage


def first_cited(text: str, passages: Sequence[PackedPassage]) -> int:
    """The passage number a repair note refers to: the first the answer cites, else the first passage."""
    numbers = {p.number for p in passages}
    return next((n for n in parse_citations(text) if n in numbers), passages[0].number if passages else 1)


class FullListCheck:
    name = "full_list"

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        note = incomplete_list(draft.text, asked_for(question.text, question.language),
                               cited_anchors(draft.text, list(passages)), question.language,
                               first_cited(draft.text, passages))
        return Verdict.ok(signals={"incomplete": float(bool(note))}, defect=note)


def build(parts: CheckParts) -> AnswerCheck:
    return FullListCheck()
