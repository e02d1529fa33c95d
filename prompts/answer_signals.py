"""Everything the checks can tell about one drafted answer, as numbers: the signals the acceptance decision
(prompts/acceptance.py) weighs, and what a refusal or a benchmark row reports.

- the model's p(yes) that the cited sentences answer the question (prompts/evidence_verification.py) and that
  the answer itself is right by them (prompts/claim_check.py): one forward pass each, the second reusing the first's
  evaluated opening;
- conflicts: constraint kinds (prompts/evidence_match.py) for which the cited evidence says something *else*
  (another year, date, unit; a name the passages never write; no number for a "how many");
- lexical support (prompts/lexical_support.py), and the answer's shape against what the question asks for
  (prompts/question_shape.py): a figure for a count, a year, a date;
- the answer's situation: a second attempt after a refusal, a quote standing for a marker-only answer, a question
  in another language than its passages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from prompts.citations import remove_invalid_citations
from prompts.claim_check import verify_claim
from prompts.evidence_match import cited_anchors, cited_evidence, cited_passages, match_constraints
from prompts.evidence_verification import YesNoScorer, verify_evidence
from prompts.language import detect_language
from prompts.lexical_support import answer_lexical_support
from prompts.quantities import read_quantities
from prompts.question_constraints import question_constraints
from prompts.question_shape import asked_for
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage


@dataclass
class AnswerSignals:
    p_yes_evidence: float | None = None
    p_yes_claim: float | None = None
    # Constraint kind -> what the evidence says against the question ("the cited passages give 2020, not 2021").
    conflicts: dict[str, str] = field(default_factory=dict)
    lexical_support: float | None = None
    lexical_tokens: int = 0
    asked: str = ""  # what the question asks for (question_shape kinds)
    has_figure: bool = False
    cross_language: bool = False
    retried: bool = False
    quoted: bool = False  # a marker-only answer replaced by a quote of the cited sentence
    evidence: str = ""

    @property
    def shape_mismatch(self) -> bool:
        """A count, quantity, year or date asked, and no figure in the answer."""
        return self.asked in ("count", "quantity", "year", "date") and not self.has_figure

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("evidence")
        d["shape_mismatch"] = self.shape_mismatch
        return d


def answer_signals(question: str, answer: str, packed: list[PackedPassage], language: str,
                   settings: AnswerSettings, scorer: YesNoScorer | None, checks: frozenset[str],
                   retried: bool = False, quoted: bool = False) -> AnswerSignals:
    """The signals of ``answer`` (citations already checked) to ``question`` over ``packed``; ``checks``: the
    constraint kinds to hold (fewer across languages); ``scorer`` None: no LLM verdicts."""
    evidence = cited_evidence(answer, packed, settings.evidence_neighbours)
    passages, anchors = cited_passages(answer, packed), cited_anchors(answer, packed)
    constraints = question_constraints(question, language)
    conflicts = {}
    for kind in sorted(checks):
        match = match_constraints(constraints, evidence, frozenset({kind}), settings.min_question_coverage,
                                  settings.min_coverage_tokens, passages, anchors)
        if not match.matches:
            conflicts[kind] = "; ".join(match.missing)
    support = answer_lexical_support(answer, packed, settings.zh_min_cjk_share,
                                     skip=(settings.refusal_zh, settings.refusal_en))
    passage_language = detect_language("".join(p.text for p in packed), settings.zh_min_cjk_share)
    bare = remove_invalid_citations(answer, set())
    signals = AnswerSignals(conflicts=conflicts, lexical_support=support.score, lexical_tokens=support.total,
                            asked=asked_for(question, language).kind, has_figure=bool(read_quantities(bare)),
                            cross_language=passage_language != language, retried=retried, quoted=quoted,
                            evidence=evidence)
    if scorer is not None:
        signals.p_yes_evidence = verify_evidence(scorer, question, evidence, language)
        signals.p_yes_claim = verify_claim(scorer, question, answer, evidence, language)
    return signals
