"""The answer pipeline with issue #25's finishing step: one decision per draft (prompts/answer_decision.py) and one
repair before refusing, in place of the chain of vetoes (constraint mismatch, evidence verification, lexical
support). Everything before the draft (retrieval, gates, the prompt, the retry after a refusal) is the shipped
pipeline's, so a benchmark compares the two finishing steps on the same drafts (bench/keep_right_bench.py
--decision, bench/answer_bench.py --decision)."""

from __future__ import annotations

import time
from dataclasses import replace

from app.answer.answer_pipeline import AnswerPipeline, _passage_language, is_refusal
from app.config import Settings
from app.generation.base import Generator
from app.wiring import build_answer_checks, build_support_scorer
from ingest.embedding.embedder import Embedder
from prompts.answer_decision import Decision, decide
from prompts.answer_repair import repair_messages
from prompts.citations import build_citations, remove_invalid_citations
from prompts.grounding_check import SupportScorer, check_answer
from prompts.number_support import unsupported_numbers
from prompts.records import Answer
from prompts.templates import PackedPassage, build_messages

# Constraint kinds that cannot be compared across languages (the question's words are not the passages' words).
SAME_LANGUAGE_ONLY = frozenset({"name", "coverage", "relative_time", "unit"})


class DecisionPipeline(AnswerPipeline):
    """AnswerPipeline whose answers are finished by ``decide`` (and repaired once when it names a finding). With
    ``shadow``, each draft is also finished by the shipped chain of checks (``last_shadow``), so one run gives both
    systems' verdicts on the same drafts."""

    def __init__(self, *args, support_scorer: SupportScorer, shadow: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.support_scorer = support_scorer
        self.shadow = shadow
        self.last_shadow: Answer | None = None

    @classmethod
    def assemble(cls, retriever, generator: Generator, embedder: Embedder, settings: Settings,
                 shadow: bool = False) -> DecisionPipeline:
        """The pipeline over parts already loaded, with the gates and checks the settings name (as
        app.wiring.assemble_pipeline)."""
        support_scorer = build_support_scorer(settings, embedder)
        gates, checks = build_answer_checks(settings, generator, embedder, support_scorer)
        return cls(retriever, generator, settings, gates, checks, support_scorer=support_scorer, shadow=shadow)

    def _finish(self, raw: str, packed: list[PackedPassage], refused: Answer, retried: bool = False,
                unchecked: str = "", first_pass: bool = False) -> Answer:
        if self.shadow:
            self.last_shadow = super()._finish(raw, packed, replace(refused, timings=dict(refused.timings)),
                                               retried, unchecked, first_pass)
        a = self.settings.answer
        if not raw or is_refusal(raw, (a.refusal_zh, a.refusal_en)):
            return super()._finish(raw, packed, refused, retried, unchecked, first_pass)
        text = remove_invalid_citations(raw, {p.number for p in packed})
        question = refused.standalone_question or refused.question
        invented = unsupported_numbers(text, [p.text for p in packed], question) if retried else []
        if invented:
            return super()._finish(raw, packed, refused, retried, unchecked, first_pass)
        language = refused.language
        passage_language = _passage_language(packed, a)
        checks = frozenset(a.evidence_checks)
        if passage_language != language:
            checks -= SAME_LANGUAGE_ONLY
        scorer = self.generator if hasattr(self.generator, "yes_probability") else None
        start = time.perf_counter()
        decision = decide(question, text, packed, language, a, scorer, checks, retried)
        refused.timings["decision"] = time.perf_counter() - start
        if decision.wants_repair:
            start = time.perf_counter()
            decision = self._repair(decision, raw, question, packed, language, passage_language, scorer, checks,
                                    retried)
            refused.timings["repair"] = time.perf_counter() - start
        refused.timings["acceptance"] = decision.score
        if not decision.accepted:
            return replace(refused, refusal_reason=decision.reason)
        return replace(refused, text=decision.text, refused=False, citations=build_citations(decision.text, packed),
                       checks=check_answer(decision.text, packed, self.support_scorer, a.min_support_score,
                                           skip=(a.refusal_zh, a.refusal_en)))

    def _repair(self, decision: Decision, raw: str, question: str, packed: list[PackedPassage], language: str,
                passage_language: str, scorer, checks: frozenset[str], retried: bool) -> Decision:
        """Ask the model once more with the finding; the repaired draft is decided the same way and replaces the
        first one when it is kept (the first one stands otherwise, kept or refused)."""
        a = self.settings.answer
        prompt = (build_messages(question, packed, passage_language, self._refusal(language), allow_refusal=False)
                  if retried else build_messages(question, packed, language, self._refusal(language)))
        messages = repair_messages(prompt, raw, decision.finding, question, language)
        repaired = "".join(self.generator.stream(messages, self.settings.generation)).strip()
        if not repaired or is_refusal(repaired, (a.refusal_zh, a.refusal_en)):
            return decision
        second = decide(question, remove_invalid_citations(repaired, {p.number for p in packed}), packed, language,
                        a, scorer, checks, retried)
        return second if second.accepted else decision
