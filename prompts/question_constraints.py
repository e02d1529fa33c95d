"""What a question pins down, so evidence about a neighbouring year, event or quantity is not taken for an answer.

Near-miss passages (same topic, answer absent) pass every word-level gate: the names and numbers of a wrong answer
are the passages' own. What they lack is what the question constrains: the year asked ("2021年"), the date, the
relative time ("去年", "本届"), the kind of quantity ("多少人" needs a count of people), a time when "when" is asked,
and the named things the question is about. This module only reads the question; prompts/evidence_match.py holds
those constraints against the sentences an answer cites (bench/RESULTS_NEAR_MISS.md measures each kind).
Chinese (simplified and traditional) and English."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from ingest.store.text_tokenizer import TokenizerOptions, tokenize
from prompts.asked_role import asked_roles
from prompts.quantities import Quantity, pinning_figures, to_arabic
from prompts.question_names import question_names
from prompts.question_shape import COUNT, DATE, QUANTITY, TIME, YEAR, AskedFor, asked_for
from prompts.sibling_variants import asked_variants

# A year: four digits (1000–2099) followed by 年 in Chinese (二〇二一年 is read as 2021年 first: to_arabic);
# standing alone in English.
_YEAR_ZH = re.compile(r"(?<!\d)(1\d{3}|20\d{2})\s*年")
# Not inside a longer number ("12,019", "1,2019", "2019.5"), but "In 1351, the …" is a year.
_YEAR_EN = re.compile(r"(?<![\d.])(?<!\d,)(1\d{3}|20\d{2})(?!\d|[,.]\d)")
_DATE_ZH = re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*[日號号]")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_MONTH_RE = "|".join(m.capitalize() for m in _MONTHS)
_DATE_EN = re.compile(rf"\b({_MONTH_RE})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b|\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?"
                      rf"({_MONTH_RE})\b")
# Relative times name a period only the document's own date fixes: the evidence must use the same word.
RELATIVE_TIMES_ZH = ("去年", "今年", "明年", "前年", "後年", "后年", "本届", "本屆", "上届", "上屆", "下届", "下屆",
                     "上个月", "上個月", "本月", "下个月", "下個月", "上周", "上週", "本周", "本週", "昨天", "今天",
                     "明天", "本季", "上季")
RELATIVE_TIMES_EN = ("last year", "this year", "next year", "last month", "this month", "next month", "last week",
                     "this week", "yesterday", "today", "tomorrow", "this season", "last season")
# Quoted or bracketed titles are names the evidence must contain as written.
_QUOTED = re.compile(r"[《「『“\"]([^》」』”\"]{2,30})[》」』”\"]")
# English proper nouns: capitalised words not opening the question, outside the question words.
_CAPITALISED = re.compile(r"(?<![.?!]\s)(?<!^)\b([A-Z][a-zA-Z'\-]+)\b")
_EN_SKIP = frozenset({"What", "Who", "Whom", "Whose", "When", "Where", "Which", "Why", "How", "Is", "Are", "Was",
                      "Were", "Did", "Do", "Does", "The", "A", "An", "In", "On", "Of", "I"})


# Coverage is counted in CJK character bigrams (robust where word segmentation of names errs) and English words;
# bigrams holding a question word (什么, 哪一, 多少 …) are never in the evidence and are left out.
COVERAGE_TOKENS = TokenizerOptions(cjk_bigrams=True, cjk_words=False)
_QUESTION_WORD = re.compile(r"^#.*[什麼么哪幾几誰谁何怎呢嗎吗]|^(?:what|who|whom|whose|when|where|which|why|how)$")


@dataclass
class QuestionConstraints:
    """What the question fixes. Every field is a requirement on the evidence; empty means nothing asked."""

    language: str
    years: list[str] = field(default_factory=list)
    dates: list[tuple[int, int]] = field(default_factory=list)  # (month, day)
    relative_times: list[str] = field(default_factory=list)
    units: list[str] = field(default_factory=list)  # the unit of a "how many X" (not a classifier)
    relation: str = ""  # "when", "how_many" or "" (who/what/where are not checked: any noun answers them)
    roles: list[str] = field(default_factory=list)  # the role a "who" asks for (prompts/asked_role.py)
    figures: list[Quantity] = field(default_factory=list)  # "100米", "第五届", "6号线" (prompts/quantities.py)
    names: list[str] = field(default_factory=list)  # quoted titles, Latin/coined terms (GPT-3, 《紅樓夢》)
    variants: list[str] = field(default_factory=list)  # names with a stem and a variant: Top-k, GPT-3, X-7B-base
    proper_nouns: list[str] = field(default_factory=list)  # English capitalised words (Kublai, Warsaw)
    content_tokens: list[str] = field(default_factory=list)  # for question–evidence coverage


def years_in(text: str, language: str) -> list[str]:
    if language == "zh":
        return list(dict.fromkeys(_YEAR_ZH.findall(to_arabic(text))))
    return list(dict.fromkeys(_YEAR_EN.findall(text)))


def dates_in(text: str) -> list[tuple[int, int]]:
    dates = [(int(m), int(d)) for m, d in _DATE_ZH.findall(to_arabic(text))]
    for month1, day1, day2, month2 in _DATE_EN.findall(text):
        month, day = (month1, day1) if month1 else (month2, day2)
        dates.append((_MONTHS.index(month.lower()) + 1, int(day)))
    return [d for d in dict.fromkeys(dates) if 1 <= d[0] <= 12 and 1 <= d[1] <= 31]


def _units(shape: AskedFor) -> list[str]:
    """The unit a count or quantity must be given in: "人" for a count of people (any counting word for people
    answers it, prompts/quantities.py), a measure unit ("公里"), or none (classifiers, nouns: any count)."""
    return [shape.unit] if shape.unit else []


def _names(text: str, language: str) -> list[str]:
    names = [q.strip() for q in _QUOTED.findall(text)]
    names += question_names(text, language)
    return list(dict.fromkeys(n for n in names if n))


def _proper_nouns(text: str, language: str) -> list[str]:
    if language != "en":
        return []
    words = (re.sub(r"'s?$", "", w) for w in _CAPITALISED.findall(text) if w not in _EN_SKIP)
    return list(dict.fromkeys(w for w in words if len(w) > 1))


def _relation(shape: AskedFor) -> str:
    """"when" for a year, date or time, "how_many" for a count or quantity (a list or a noun: "")."""
    if shape.kind in (YEAR, DATE, TIME):
        return "when"
    return "how_many" if shape.kind in (COUNT, QUANTITY) else ""


def question_constraints(question: str, language: str) -> QuestionConstraints:
    """The constraints of ``question`` (``language``: "zh" or "en", as detect_language decides)."""
    text = unicodedata.normalize("NFKC", question)
    relative = RELATIVE_TIMES_ZH if language == "zh" else RELATIVE_TIMES_EN
    lowered = text.lower()
    shape = asked_for(text, language)
    return QuestionConstraints(
        language=language,
        years=years_in(text, language),
        dates=dates_in(text),
        relative_times=[r for r in relative if r in lowered],
        units=_units(shape),
        relation=_relation(shape),
        roles=asked_roles(text, language),
        figures=pinning_figures(text) if language == "zh" else [],
        names=_names(text, language),
        variants=asked_variants(text, language),
        proper_nouns=_proper_nouns(text, language),
        content_tokens=list(dict.fromkeys(t for t in tokenize(text, COVERAGE_TOKENS) if not _QUESTION_WORD.search(t))),
    )
