"""Refuse a near miss: the evidence the answer cites must meet what the question asks (its years, dates,
relative times, the unit of a "how many", a time for a "when", the edition or measure it pins, the role of a
"who", the variant it names and not a sibling of it (prompts/sibling_variants.py), its names:
prompts/evidence_match.py, prompts/question_constraints.py; kinds in ``evidence_checks``)."""

from __future__ import annotations

from collections.abc import Sequence

from prompts.checks.base import AnswerCheck, Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.evidence_match import EvidenceMatch, cited_anchors, cited_evidence, cited_passages, match_constraints
from prompts.language import passages_language
from prompts.question_constraints import question_constraints
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage

# Across languages (an English question over Chinese passages) the question's words and names are not the
# passages' words: only years, dates and the relation asked can be compared.
_SAME_LANGUAGE_ONLY = frozenset({"name", "coverage", "relative_time", "unit", "role", "figure", "variant"})


class ConstraintsCheck:
    name = "constraints"

    def __init__(self, settings: AnswerSettings) -> None:
        self.settings = settings

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        a, packed = self.settings, list(passages)
        kinds = frozenset(a.evidence_checks)
        if passages_language(packed, a.zh_min_cjk_share) != question.language:
            kinds -= _SAME_LANGUAGE_ONLY
        constraints = question_constraints(question.text, question.language)
        evidence, cited = cited_evidence(draft.text, packed, a.evidence_neighbours), cited_passages(draft.text, packed)
        anchors = cited_anchors(draft.text, packed)

        def match(checked: frozenset[str]) -> EvidenceMatch:
            return match_constraints(constraints, evidence, checked, a.min_question_coverage, a.min_coverage_tokens,
                                     cited, anchors)

        found = match(kinds)
        signals = {"missing": float(len(found.missing))}
        if found.coverage is not None:
            signals["coverage"] = found.coverage
        if not found.matches:
            # Which kinds the evidence speaks against ("conflict_year": another year), for a decision that weighs
            # them apart (prompts/acceptance.py): each kind alone, only when the whole does not match.
            signals.update({f"conflict_{kind}": 1.0 for kind in sorted(kinds) if not match(frozenset({kind})).matches})
            return Verdict.refuse(f"{draft.described_as} does not answer this question: {'; '.join(found.missing)}; "
                                  f"draft answer: {draft.text}", signals=signals)
        return Verdict.ok(signals=signals)


def build(parts: CheckParts) -> AnswerCheck:
    return ConstraintsCheck(parts.settings)
