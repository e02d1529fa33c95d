"""Gate: refuse without calling the LLM when the question names something (GPTQ, HyDE, vLLM; a Chinese term it
asks about, 投机解码) that no packed passage or its source label mentions (prompts/question_names.py;
``require_question_names``, ``require_subject_terms``)."""

from __future__ import annotations

from collections.abc import Sequence

from prompts.checks.base import PassageGate, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.question_names import check_question_names
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage, source_label
from retrieval.results import ScoredChunk


class QuestionNamesGate:
    name = "question_names"

    def __init__(self, settings: AnswerSettings) -> None:
        self.settings = settings

    def check_passages(self, question: Question, passages: Sequence[PackedPassage],
                       retrieved: Sequence[ScoredChunk]) -> Verdict:
        if not self.settings.require_question_names:
            return Verdict.ok()
        texts = [p.text for p in passages] + [source_label(p.passage) for p in passages]
        names = check_question_names(question.text, question.language, texts, self.settings.require_subject_terms)
        if not names.answerable:
            missing = ", ".join(f"'{n}'" for n in names.missing)
            return Verdict.refuse(f"the passages never mention {missing}", signals={"missing": len(names.missing)})
        return Verdict.ok(signals={"missing": 0})


def build(parts: CheckParts) -> PassageGate:
    return QuestionNamesGate(parts.settings)
