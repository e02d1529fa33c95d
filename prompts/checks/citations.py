"""Repair: drop citation numbers that name no passage the model saw (``[5]`` of three passages), keeping the
valid ones as ``[n]`` markers (prompts/citations.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.citations import parse_citations, remove_invalid_citations
from prompts.templates import PackedPassage


class CitationsCheck:
    name = "citations"

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        valid = {p.number for p in passages}
        cited = parse_citations(draft.text)
        signals = {"cited": float(sum(n in valid for n in cited)), "invalid": float(sum(n not in valid for n in cited))}
        return Verdict.ok(replace(draft, text=remove_invalid_citations(draft.text, valid)), signals=signals)


def build(parts: CheckParts) -> AnswerCheck:
    return CitationsCheck()
