"""Refuse a second answer (asked without the option to refuse) that states a number its passages do not hold:
the small model fills gaps with plausible figures (prompts/number_support.py)."""

from __future__ import annotations

from collections.abc import Sequence

from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.number_support import unsupported_numbers
from prompts.templates import PackedPassage


class RetryNumbersCheck:
    name = "retry_numbers"

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        if not draft.retried:
            return Verdict.ok()
        invented = unsupported_numbers(draft.text, [p.text for p in passages])
        if invented:
            return Verdict.refuse(f"the model found no answer; its second answer states {', '.join(invented)}, "
                                  f"which the passages do not contain: {draft.text}",
                                  signals={"unsupported": float(len(invented))})
        return Verdict.ok(signals={"unsupported": 0.0})


def build(parts: CheckParts) -> AnswerCheck:
    return RetryNumbersCheck()
