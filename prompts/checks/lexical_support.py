"""Refuse an answer whose content words mostly do not occur in the passages it cites: an explanation from the
model's own knowledge (prompts/lexical_support.py; ``min_lexical_support`` over ``min_lexical_tokens``)."""

from __future__ import annotations

from collections.abc import Sequence

from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.lexical_support import answer_lexical_support
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage


class LexicalSupportCheck:
    name = "lexical_support"

    def __init__(self, settings: AnswerSettings) -> None:
        self.settings = settings

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        a = self.settings
        support = answer_lexical_support(draft.text, list(passages), a.zh_min_cjk_share,
                                         skip=(a.refusal_zh, a.refusal_en))
        signals = {"tokens": float(support.total)}
        if support.score is not None:
            signals["score"] = support.score
        if (a.min_lexical_support > 0 and support.total >= a.min_lexical_tokens and support.score is not None
                and support.score < a.min_lexical_support):
            return Verdict.refuse(f"grounding check: only {support.covered} of the answer's {support.total} content "
                                  f"words occur in the passages it cites (lexical support {support.score:.2f} < "
                                  f"{a.min_lexical_support}); draft answer: {draft.text}", signals=signals)
        return Verdict.ok(signals=signals)


def build(parts: CheckParts) -> AnswerCheck:
    return LexicalSupportCheck(parts.settings)
