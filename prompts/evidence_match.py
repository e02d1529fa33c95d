"""Does the evidence an answer cites answer THIS question, or a neighbouring one?

The evidence of an answer is, for each cited passage, the sentence that the answer's words come from (its anchor)
with ``neighbours`` sentences either side, plus the passage's source label (title, heading). That text must meet
the question's constraints (prompts/question_constraints.py): the years, dates and relative times asked, a count in
the unit asked for a "how many", a time for a "when", the question's names, and enough of the question's words
(coverage). A failed constraint is named in the refusal reason ("the cited passages give 2020, not 2021")."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ingest.store.text_tokenizer import tokenize
from prompts.citations import parse_citations, remove_invalid_citations
from prompts.asked_role import other_roles
from prompts.quantities import other_figures, read_quantities, unit_group
from prompts.question_names import mentions
from prompts.question_constraints import (
    COVERAGE_TOKENS,
    QuestionConstraints,
    dates_in,
    years_in,
)
from prompts.sibling_variants import sibling_variants
from prompts.sentences import split_sentences
from prompts.templates import PackedPassage, source_label

_NUMBER_ZH = re.compile(r"\d|[兩两二三四五六七八九十百千萬万億亿][^\s]?")
_NUMBER_EN = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
                        r"forty|fifty|hundred|thousand|million|billion|dozen|several|single|both|once|twice|"
                        r"half)\b", re.IGNORECASE)
_TIME_ZH = re.compile(r"\d\s*[年月日]|[〇零○一二三四五六七八九十百]+\s*年|世紀|世纪|年代|朝代|王朝|朝[初末中時时]|時期|时期|期間|期间|"
                      r"[春夏秋冬]季|末年|初年|當時|当时|之後|之后|以後|以后|之前|以前|年間|年间|民國|民国|公元|西元")
_TIME_EN = re.compile(r"\b(?:1\d{3}|20\d{2}|\d{1,4}s)\b|centur|\bBC\b|\bAD\b|\bCE\b|decade|dynasty|\bera\b|period|"
                      r"\byears?\b|\bago\b|\bsince\b|\buntil\b|\bduring\b|\bbefore\b|\bafter\b|\breign|\bmonths?\b|"
                      r"\bdays?\b|\b(?:january|february|march|april|may|june|july|august|september|october|"
                      r"november|december)\b|\b(?:spring|summer|autumn|fall|winter)\b|\bin\s+\d", re.IGNORECASE)


@dataclass
class EvidenceMatch:
    """How the cited evidence meets the question's constraints; ``missing`` names each one it fails."""

    missing: list[str] = field(default_factory=list)
    coverage: float | None = None  # share of the question's content tokens in the evidence (None: too few)
    evidence: str = ""

    @property
    def matches(self) -> bool:
        return not self.missing


def coverage_tokens(text: str) -> set[str]:
    return set(tokenize(text, COVERAGE_TOKENS))


def anchor_window(passage_text: str, claim: str, neighbours: int) -> str:
    """The sentence of ``passage_text`` sharing most tokens with ``claim``, with ``neighbours`` sentences on each
    side; the whole passage when no sentence shares any."""
    sentences = split_sentences(passage_text)
    claim_tokens = coverage_tokens(claim)
    best, best_overlap = -1, 0
    for i, sentence in enumerate(sentences):
        overlap = len(claim_tokens & coverage_tokens(sentence))
        if overlap > best_overlap:
            best, best_overlap = i, overlap
    if best < 0:
        return passage_text
    return "".join(sentences[max(0, best - neighbours):best + neighbours + 1])


def cited_evidence(answer: str, packed: list[PackedPassage], neighbours: int) -> str:
    """The evidence ``answer`` rests on: for each sentence of it and each passage it cites, the anchor window in
    that passage (an uncited answer is anchored in every passage), with the passages' source labels."""
    by_number = {p.number: p for p in packed}
    all_cited = [n for n in parse_citations(answer) if n in by_number]
    pieces: list[str] = []
    for sentence in split_sentences(answer) or [answer]:
        cited = [n for n in parse_citations(sentence) if n in by_number] or all_cited or list(by_number)
        claim = remove_invalid_citations(sentence, set())
        if not coverage_tokens(claim):
            continue
        for n in cited:
            pieces.append(anchor_window(by_number[n].text, claim, neighbours))
    if not pieces:  # markers only: the cited passages as a whole
        pieces = [by_number[n].text for n in all_cited]
    labels = [source_label(by_number[n].passage) for n in (all_cited or list(by_number))]
    return "\n".join(dict.fromkeys(labels + pieces))


def _has_name(name: str, evidence: str, language: str) -> bool:
    if not name.isascii():  # a quoted Chinese title: as written
        return name.lower() in evidence.lower()
    if language == "zh":  # a Latin term of a Chinese question, as the name gate finds it ("XX-base" in "XX")
        return mentions(evidence, name)
    # English: whole word, any case, possessive/plural tolerated ("Mongol" finds "Mongols", "Mongol's").
    return re.search(rf"(?<![A-Za-z]){re.escape(name)}", evidence, re.IGNORECASE) is not None


def _has_count_in(unit: str, evidence: str) -> bool:
    """A figure written in ``unit`` or a unit measuring the same thing (a count of people in 人, 名, 位, 人次 …:
    "1.2万名学生" answers "多少人"; 千米 answers 公里), read by prompts/quantities.py ("3萬多人", "两百余名", "375 道")."""
    group = unit_group(unit)
    return any(q.unit in group for q in read_quantities(evidence))


def cited_anchors(answer: str, packed: list[PackedPassage]) -> list[str]:
    """The anchor sentences alone (no neighbours): the sentences the answer's words come from."""
    by_number = {p.number: p for p in packed}
    all_cited = [n for n in parse_citations(answer) if n in by_number]
    anchors = []
    for sentence in split_sentences(answer) or [answer]:
        claim = remove_invalid_citations(sentence, set())
        if coverage_tokens(claim):
            for n in [n for n in parse_citations(sentence) if n in by_number] or all_cited or list(by_number):
                anchors.append(anchor_window(by_number[n].text, claim, 0))
    return anchors


def cited_passages(answer: str, packed: list[PackedPassage]) -> str:
    """The whole passages ``answer`` cites (all when it cites none), with their source labels."""
    by_number = {p.number: p for p in packed}
    cited = [n for n in parse_citations(answer) if n in by_number] or list(by_number)
    return "\n".join(source_label(by_number[n].passage) + "\n" + by_number[n].text for n in cited)


def own_years(anchors: list[str] | None, language: str) -> list[str]:
    return [y for a in anchors or [] for y in years_in(unicodedata.normalize("NFKC", a), language)]


def match_constraints(constraints: QuestionConstraints, evidence: str, checks: frozenset[str],
                      min_coverage: float, min_coverage_tokens: int, passages: str | None = None,
                      anchors: list[str] | None = None) -> EvidenceMatch:
    """Check ``evidence`` against the constraints whose kind is in ``checks`` ("year", "date", "relative_time",
    "unit", "relation", "figure", "role", "variant", "name", "proper_noun", "coverage"). Names are looked for in
    ``passages`` (the whole cited passages) when given: a passage names its subject once and then says "it", so the
    anchor sentence need not.
    An anchor sentence (``anchors``) that states years of its own is about those years: it must hold the year
    asked, whatever its neighbours say (an answer quoting 2019's figure next to a sentence about 2020 is no
    answer for 2020)."""
    text = unicodedata.normalize("NFKC", evidence)
    name_text = unicodedata.normalize("NFKC", passages) if passages is not None else text
    lang = constraints.language
    missing: list[str] = []
    if "year" in checks and constraints.years:
        given = years_in(text, lang) if lang == "en" else list(dict.fromkeys(re.findall(r"(?<!\d)(1\d{3}|20\d{2})(?!\d)", text)))
        absent = [y for y in constraints.years if y not in given]
        for anchor in anchors or []:
            own = years_in(unicodedata.normalize("NFKC", anchor), lang)
            if own and not absent and not set(own) & set(constraints.years):
                absent, given = list(constraints.years), own
        # Only another year is evidence against: news, reports and notes often leave their own year unsaid. In
        # Chinese a year is written with 年: "1850万吨" and "2010万吨" are amounts, whatever their digits.
        written = given if lang == "en" else years_in(text, lang) + own_years(anchors, lang)
        other = [y for y in dict.fromkeys(written) if y not in constraints.years]
        if absent and other:
            missing.append(f"the cited passages give {', '.join(other)}, not {', '.join(absent)}")
    if "date" in checks and constraints.dates:
        given_dates = set(dates_in(text))
        absent_dates = [d for d in constraints.dates if d not in given_dates]
        if absent_dates and given_dates - set(constraints.dates):
            missing.append("the cited passages give the date " +
                           ", ".join(f"{m}/{d}" for m, d in sorted(given_dates - set(constraints.dates))) +
                           ", not " + ", ".join(f"{m}/{d}" for m, d in absent_dates))
    if "relative_time" in checks:
        lowered = text.lower()
        for word in constraints.relative_times:
            if word not in lowered:
                missing.append(f"the cited passages do not speak of '{word}'")
    if "unit" in checks:
        for unit in constraints.units:
            if not _has_count_in(unit, text):
                missing.append(f"the cited passages give no count in '{unit}'")
    if "relation" in checks and constraints.relation:
        number, time = (_NUMBER_ZH, _TIME_ZH) if lang == "zh" else (_NUMBER_EN, _TIME_EN)
        if constraints.relation == "how_many" and not number.search(text):
            missing.append("the question asks how many, and the cited passages give no number")
        if constraints.relation == "when" and not time.search(text):
            missing.append("the question asks when, and the cited passages give no time")
    if "figure" in checks:
        for figure, others in other_figures(constraints.figures, text):
            missing.append(f"the cited passages give {', '.join(q.text for q in others)}, not {figure.text}")
    if "role" in checks:
        others = other_roles(constraints.roles, text, lang)
        if others:
            missing.append(f"the cited passages name the {', '.join(others)}, not the {', '.join(constraints.roles)}")
    if "variant" in checks:
        # In the evidence itself (anchor sentences and neighbours), not the whole passage: the passage about Top-p
        # also names Top-k further on, and the sentence the answer rests on is what must be about the asked one.
        for name, siblings in sibling_variants(constraints.variants, text):
            missing.append(f"the cited sentences name {', '.join(siblings)}, not {name}")
    for kind, names in (("name", constraints.names), ("proper_noun", constraints.proper_nouns)):
        absent_names = [n for n in names if not _has_name(n, name_text, lang)] if kind in checks else []
        if absent_names:
            missing.append("the cited passages do not mention " + ", ".join(f"'{n}'" for n in absent_names))
    coverage = None
    if constraints.content_tokens and len(constraints.content_tokens) >= min_coverage_tokens:
        have = coverage_tokens(text)
        coverage = sum(t in have for t in constraints.content_tokens) / len(constraints.content_tokens)
        if "coverage" in checks and coverage < min_coverage:
            missing.append(f"the cited passages hold only {coverage:.0%} of the question's words "
                           f"(< {min_coverage:.0%}): they are about something else")
    return EvidenceMatch(missing=missing, coverage=coverage, evidence=evidence)
