"""The decision on one drafted answer: keep it (as drafted, with its unit, or with a corrected figure), repair it,
or refuse it — one acceptance score over every signal (prompts/acceptance.py) instead of a chain of vetoes.

In order: a marker-only answer stands for the quote of its cited sentence; a bare figure takes the unit the cited
sentence writes it with; a figure that is the part a cited sentence sets apart, asked about the rest, becomes
total − part; then the signals are read (two yes/no verdicts of the local model, the constraints the evidence
conflicts with, lexical support, the answer's shape) and scored. A fixable defect (a marker-only answer, a list
shorter than the cited one, a doubted figure among several) is named as a finding, for the caller to ask the model
once more with (prompts/answer_repair.py) and decide on the repaired draft the same way."""

from __future__ import annotations

from dataclasses import dataclass

from prompts.acceptance import acceptance_score, against
from prompts.answer_repair import Finding, find_defect, with_units
from prompts.answer_signals import AnswerSignals, answer_signals
from prompts.citations import parse_citations
from prompts.claim_check import apply_derivation, cited_sentences_with_figures, complement_derivation, verify_claim
from prompts.evidence_match import cited_anchors
from prompts.evidence_verification import YesNoScorer
from prompts.marker_only_answer import is_markers_only, quote_cited_sentence
from prompts.question_shape import asked_for
from prompts.settings import AnswerSettings
from prompts.templates import PackedPassage

# Findings worth a second generation even when the draft would be kept: the answer should state the full list,
# and a real answer beats a quote.
REPAIR_EVEN_IF_KEPT = frozenset({"incomplete_list", "markers_only"})


@dataclass
class Decision:
    accepted: bool
    text: str  # what to show when accepted: the draft, with its unit or corrected figure, or the quote
    score: float
    signals: AnswerSignals
    reason: str = ""  # why it is refused ("" when accepted)
    finding: Finding | None = None  # a fixable defect: ask the model once more with it
    derived: str = ""  # the arithmetic of a corrected figure ("412 − 37 = 375")

    @property
    def wants_repair(self) -> bool:
        return self.finding is not None and (not self.accepted or self.finding.kind in REPAIR_EVEN_IF_KEPT)


def _refusal_reason(signals: AnswerSignals, score: float, threshold: float, quoted: bool, text: str) -> str:
    what = "the quoted sentence" if quoted else "the answer"
    if against(signals) or signals.conflicts:
        why = "; ".join(against(signals) or signals.conflicts.values())
    else:
        verdicts = [f"{name} {p:.2f}" for name, p in (("evidence", signals.p_yes_evidence),
                                                     ("answer", signals.p_yes_claim)) if p is not None]
        why = ("asked whether the cited sentences answer the question and whether the answer is right by them, "
               f"the model doubts it (p(yes): {', '.join(verdicts)})" if verdicts else "its signals are weak")
    score_note = "" if against(signals) else f" (acceptance {score:.2f} < {threshold:g})"
    return f"{what} does not answer this question: {why}{score_note}; draft answer: {text}"


def decide(question: str, draft: str, packed: list[PackedPassage], language: str, settings: AnswerSettings,
           scorer: YesNoScorer | None, checks: frozenset[str], retried: bool = False) -> Decision:
    """The decision on ``draft`` (invalid citations already removed) to ``question`` over ``packed``."""
    text, quoted = draft, False
    if is_markers_only(draft):
        quote = quote_cited_sentence(question, draft, packed, language)
        text, quoted = quote or draft, quote is not None
    asked = asked_for(question, language)
    anchors = cited_anchors(text, packed)
    if not quoted:
        text = with_units(text, asked, anchors)
    signals = answer_signals(question, text, packed, language, settings, scorer, checks, retried, quoted)
    derived = ""
    derivation = complement_derivation(question, text, cited_sentences_with_figures(signals.evidence), language)
    if derivation is not None and not quoted:
        text, derived = apply_derivation(text, derivation, language), derivation.explain()
        if scorer is not None:  # the verdict on the corrected answer, not on the figure it replaced
            signals.p_yes_claim = verify_claim(scorer, question, text, signals.evidence, language)
    model = settings.acceptance
    score = acceptance_score(signals, model)
    accepted = score >= model.threshold and not against(signals)
    doubted = signals.p_yes_claim is not None and signals.p_yes_claim < settings.min_claim_yes
    cited = [n for n in parse_citations(draft)] or [packed[0].number if packed else 1]
    finding = None if derived else find_defect(text, asked, anchors, language, is_markers_only(draft), doubted,
                                               cited[0])
    reason = "" if accepted else _refusal_reason(signals, score, model.threshold, quoted, text)
    return Decision(accepted, text, score, signals, reason, finding, derived)
