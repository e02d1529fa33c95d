"""Judge the answer, not only the evidence: is *this answer* right for this question, by the sentences it cites?

The evidence verification (prompts/evidence_verification.py) asks whether the cited sentences answer the question.
"青鸾评测集里有多少道题是有答案的？" answered "37 [1]" passes it — the passage does answer the question (412 questions,
37 of them without answers) — yet 37 is the count of the *other* questions. Two things here look at the claim:

- ``complement_derivation``: an answer that repeats the part a sentence sets apart ("其中37道题没有答案") for a
  question about the rest ("有答案的") is corrected to total − part (412 − 37 = 375), by the sentence's own figures.
- ``claim_messages`` / ``verify_claim``: the local model asked, over the same question and cited sentences, whether
  the proposed answer is right; p(yes) is one of the signals of the acceptance decision (prompts/acceptance.py).
  Its prompt opens like the evidence verification's, so llama.cpp reuses that evaluated opening and the second
  verdict costs only its last few tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prompts.citations import remove_invalid_citations
from prompts.evidence_verification import NO, YES, YesNoScorer, verdict_messages
from prompts.quantities import Quantity, read_quantities, same_value, to_arabic, unit_group
from prompts.sentences import split_sentences
from prompts.templates import quote_as_data

_ASK_CLAIM = {
    "zh": "回答：{answer}\n\n根据这段资料，这个回答正确地回答了问题吗？只回答是或否。",
    "en": "Proposed answer: {answer}\nIs the proposed answer correct according to the text? Reply Yes or No.",
}
# Words that set a part apart as the ones *without* something, or deny it.
_NEGATION = {"zh": re.compile(r"没有|沒有|无|無|未|不|非"),
             "en": re.compile(r"\b(?:no|not|without|none|never|un\w+)\b|n't", re.IGNORECASE)}
# Words that present a figure as the whole ("共收录412道", "a total of 412", "out of 412").
_TOTAL = {"zh": re.compile(r"共|总|總|全部|合计|合計|累计|累計"),
          "en": re.compile(r"\b(?:total|in all|altogether|out of|overall)\b", re.IGNORECASE)}
_CLAUSE_END = re.compile(r"[，,；;。！？!?：:]")


@dataclass(frozen=True)
class Derivation:
    """The answer's ``replaced`` figure should be ``value`` (= total − part, both from the cited sentence)."""

    value: float
    total: Quantity
    part: Quantity
    replaced: str

    def explain(self) -> str:
        return f"{_figure(self.total.value)} − {_figure(self.part.value)} = {_figure(self.value)}"


def _figure(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _clauses(sentence: str) -> list[str]:
    return [c for c in _CLAUSE_END.split(to_arabic(sentence)) if c.strip()]


def _clause_of(quantity: Quantity, clauses: list[str]) -> str:
    written = quantity.text.replace(" ", "")
    return next((c for c in clauses if written in c.replace(" ", "")), "")


def _denied_word(clause: str, language: str) -> str:
    """What a negated clause is without: the two characters after 没有/无 …, or the English word after no/not."""
    m = _NEGATION[language].search(clause)
    if not m:
        return ""
    rest = clause[m.end():]
    if language == "zh":
        word = re.match(r"[\u4e00-\u9fff]{1,2}", rest.lstrip())
    else:
        word = re.match(r"\s*(?:an?\s+|the\s+|any\s+)?([A-Za-z]+)", rest)
    return (word.group(1) if language != "zh" else word.group(0)) if word else ""


def complement_derivation(question: str, answer: str, cited_sentences: list[str], language: str
                          ) -> Derivation | None:
    """The corrected figure when ``answer`` gives the part a cited sentence sets apart (its clause negated, e.g.
    "37道题没有答案") and the question asks about the rest (not negated), or the reverse, and the same sentence
    gives the total ("共收录412道"); None otherwise."""
    lang = "zh" if language == "zh" else "en"
    negated = _NEGATION[lang]
    asked_negated = bool(negated.search(question))
    answered = read_quantities(remove_invalid_citations(answer, set()))
    if not answered:
        return None
    for sentence in cited_sentences:
        clauses = _clauses(sentence)
        figures = read_quantities(sentence)
        for part in figures:
            if not any(same_value(part.value, a.value) for a in answered):
                continue
            part_clause = _clause_of(part, clauses)
            if not part_clause or bool(negated.search(part_clause)) == asked_negated:
                continue
            # The question must ask about what the part is without (or the reverse): the word after the negation
            # ("没有答案" → 答案) is in the other one ("有答案的"); "拒答题" is the part itself, not the rest.
            denied = _denied_word(part_clause if not asked_negated else question, lang)
            if not denied or denied.lower() not in (question if not asked_negated else part_clause).lower():
                continue
            # English units are whatever word follows the figure ("412 questions", "37 have"): not compared.
            group = unit_group(part.unit) if part.unit and lang == "zh" else None
            totals = [t for t in figures if t is not part and t.value > part.value
                      and (group is None or t.unit in group) and _TOTAL[lang].search(_clause_of(t, clauses))]
            if totals:
                replaced = next(a.text for a in answered if same_value(part.value, a.value))
                return Derivation(totals[0].value - part.value, totals[0], part, replaced)
    return None


def apply_derivation(answer: str, derivation: Derivation, language: str) -> str:
    """``answer`` with the derived figure in place of the one it replaces, and the arithmetic shown."""
    digits = re.escape(_figure(derivation.part.value))
    fixed, n = re.subn(rf"(?<![\d.]){digits}(?![\d.])", _figure(derivation.value), answer, count=1)
    if not n:  # the figure was written in words ("三十七"): say the derived figure in front
        fixed = f"{_figure(derivation.value)}：{answer}" if language == "zh" else f"{_figure(derivation.value)}: {answer}"
    note = f"（{derivation.explain()}）" if language == "zh" else f" ({derivation.explain()})"
    citations = re.search(r"(\s*\[\d+\](?:\s*\[\d+\])*)\s*[。.]?\s*$", fixed)
    if citations:  # the arithmetic before the closing citations
        return fixed[:citations.start()] + note + fixed[citations.start():]
    return fixed + note


def cited_sentences_with_figures(evidence: str) -> list[str]:
    return [s for s in split_sentences(evidence) if read_quantities(s)]


def claim_messages(question: str, answer: str, evidence: str, language: str) -> list[dict]:
    lang = "zh" if language == "zh" else "en"
    claim = quote_as_data(remove_invalid_citations(answer, set()).strip())
    return verdict_messages(question, evidence, language, _ASK_CLAIM[lang].format(answer=claim))


def verify_claim(scorer: YesNoScorer, question: str, answer: str, evidence: str, language: str) -> float:
    """The model's probability that ``answer`` answers ``question`` rightly, by ``evidence``."""
    return scorer.yes_probability(claim_messages(question, answer, evidence, language), YES, NO)
