"""Repair: the answer's Chinese characters written as its cited passages write them (traditional passages, a
simplified answer: prompts/script_alignment.py). Refuses nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.citations import parse_citations
from prompts.script_alignment import align_script
from prompts.templates import PackedPassage


class ScriptCheck:
    name = "script"

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        cited = set(parse_citations(draft.text))
        texts = [p.text for p in passages if p.number in cited] or [p.text for p in passages]
        aligned = align_script(draft.text, texts)
        changed = sum(a != b for a, b in zip(aligned, draft.text))
        return Verdict.ok(replace(draft, text=aligned) if changed else None, signals={"aligned": float(changed)})


def build(parts: CheckParts) -> AnswerCheck:
    return ScriptCheck()
