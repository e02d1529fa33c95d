"""Repair: an answer of citation markers alone ("[1]"), or one that puts the marker where the answer belongs
("… is [3]."), becomes the answering words copied out of the cited passage
(prompts/span_extraction.py; questions in ``[answer] span_languages``), or, when the model copies none, a labelled
quote of the cited passage's sentence that best matches the question (prompts/marker_only_answer.py); the checks
after it judge what it became."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prompts.answer_repair import repair_note
from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.citations import parse_citations
from prompts.marker_only_answer import points_at_passage, quote_cited_sentence
from prompts.settings import AnswerSettings
from prompts.span_extraction import ShortWriter, extract_span
from prompts.templates import PackedPassage


class MarkerQuoteCheck:
    name = "marker_quote"

    def __init__(self, settings: AnswerSettings, writer: ShortWriter | None) -> None:
        self.settings = settings
        self.writer = writer

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        if not points_at_passage(draft.text):
            return Verdict.ok(signals={"markers_only": 0.0})
        defect = repair_note("markers_only", question.language)
        span = self._span(draft, question, passages)
        if span is not None:
            return Verdict.ok(replace(draft, text=span), signals={"markers_only": 1.0, "span": 1.0}, defect=defect)
        quote = quote_cited_sentence(question.text, draft.text, list(passages), question.language)
        repaired = replace(draft, text=quote, described_as="the quoted sentence") if quote is not None else None
        return Verdict.ok(repaired, signals={"markers_only": 1.0, "span": 0.0}, defect=defect)

    def _span(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> str | None:
        """The answering words of the first cited passage, when ``span_languages`` holds the question's language
        and a model can write them."""
        a = self.settings
        by_number = {p.number: p for p in passages}
        cited = [by_number[n] for n in parse_citations(draft.text) if n in by_number]
        if question.language not in a.span_languages or self.writer is None or not cited:
            return None
        return extract_span(self.writer, question.text, cited[0], question.language, a.span_max_new_tokens,
                            a.span_max_share)


def build(parts: CheckParts) -> AnswerCheck:
    return MarkerQuoteCheck(parts.settings, parts.writer)
