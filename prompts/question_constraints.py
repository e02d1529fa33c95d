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
from prompts.question_names import question_names

_CN_DIGITS = {"〇": "0", "零": "0", "○": "0", "一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6",
              "七": "7", "八": "8", "九": "9"}
# A year: four digits (1000–2099) followed by 年 in Chinese; standing alone in English; 二〇二一年 spelled out.
_YEAR_ZH = re.compile(r"(?<!\d)(1\d{3}|20\d{2})\s*年")
# Not inside a longer number ("12,019", "1,2019", "2019.5"), but "In 1351, the …" is a year.
_YEAR_EN = re.compile(r"(?<![\d.])(?<!\d,)(1\d{3}|20\d{2})(?!\d|[,.]\d)")
_YEAR_CN = re.compile(r"([〇零○一二三四五六七八九]{4})年")
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
# "How many X" / "多少X": the count asked for, and the unit it is counted in.
_HOW_MANY_ZH = re.compile(r"(?:多少|幾|几)([個个])?([^\s，。？?、的是有在和與与為为了]{1,2})")
_HOW_MANY_EN = re.compile(r"\bhow\s+(?:many|much)\s+([a-z]+)?", re.IGNORECASE)
# Units that are classifiers or vague, so any count satisfies them ("多少个", "幾次", "how many times").
GENERIC_UNITS_ZH = frozenset("個个名位次種种項项件條条座家所支隻只張张本部")
# After 多少 these are not units: 年/歲 (a year or an age), 时 (多少时: "at what value"), 钱 (money is written in 元,
# 万, 美元 …), 倍/度/分 (written with many words).
AMBIGUOUS_UNITS_ZH = frozenset("年歲岁时時钱錢倍度分")
# 什么时候 is left out: it as often asks for a condition ("什么时候用 BERT 就够了") as for a time.
_WHEN_ZH = re.compile(r"何時|何时|哪一?年|何年|哪一?天|哪一?月|幾月|几月|哪個朝代|哪个朝代|"
                      r"何日|幾號|几号|哪一?個?時期|哪一?个?时期|何時期|哪個年代|哪个年代")
_WHEN_EN = re.compile(r"^\s*(?:in\s+)?when\b|\bwhat\s+(?:year|century|date|decade|month|day|time\s+period|era)\b|"
                      r"\bwhich\s+(?:year|century|date|decade|month|era)\b|\bhow\s+long\s+ago\b", re.IGNORECASE)
_HOW_MANY_REL_ZH = re.compile(r"多少|幾|几")
_HOW_MANY_REL_EN = re.compile(r"\bhow\s+(?:many|much)\b", re.IGNORECASE)
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
    names: list[str] = field(default_factory=list)  # quoted titles, Latin/coined terms (GPT-3, 《紅樓夢》)
    proper_nouns: list[str] = field(default_factory=list)  # English capitalised words (Kublai, Warsaw)
    content_tokens: list[str] = field(default_factory=list)  # for question–evidence coverage


def years_in(text: str, language: str) -> list[str]:
    years = _YEAR_ZH.findall(text) if language == "zh" else _YEAR_EN.findall(text)
    years += ["".join(_CN_DIGITS[c] for c in m) for m in _YEAR_CN.findall(text)]
    return list(dict.fromkeys(years))


def dates_in(text: str) -> list[tuple[int, int]]:
    dates = [(int(m), int(d)) for m, d in _DATE_ZH.findall(text)]
    for month1, day1, day2, month2 in _DATE_EN.findall(text):
        month, day = (month1, day1) if month1 else (month2, day2)
        dates.append((_MONTHS.index(month.lower()) + 1, int(day)))
    return [d for d in dict.fromkeys(dates) if 1 <= d[0] <= 12 and 1 <= d[1] <= 31]


def _units(text: str, language: str) -> list[str]:
    if language == "zh":
        units = []
        for classifier, unit in _HOW_MANY_ZH.findall(text):
            # 多少人 → 人, 多少公里 → 公里; a classifier first (多少名球员, 几个专家) leaves nothing to require.
            if classifier or unit[0] in GENERIC_UNITS_ZH or unit[0] in AMBIGUOUS_UNITS_ZH:
                continue
            units.append(unit if len(unit) == 2 and unit in _TWO_CHAR_UNITS else unit[0])
        return list(dict.fromkeys(units))
    return []  # English counts are written with many different nouns ("people", "residents"): not required


# Two-character units kept whole; any other two characters after 多少 keep only their first (多少人口 → 人).
_TWO_CHAR_UNITS = frozenset({"公里", "公尺", "公分", "公斤", "公頃", "公顷", "平方", "英里", "英尺", "美元", "港元",
                             "日元", "歐元", "欧元", "億元", "亿元", "萬元", "万元", "小時", "小时", "分鐘", "分钟",
                             "百分", "千米", "千克", "毫米", "釐米", "厘米", "人次", "台幣", "台币"})


def _names(text: str, language: str) -> list[str]:
    names = [q.strip() for q in _QUOTED.findall(text)]
    names += question_names(text, language)
    return list(dict.fromkeys(n for n in names if n))


def _proper_nouns(text: str, language: str) -> list[str]:
    if language != "en":
        return []
    words = (re.sub(r"'s?$", "", w) for w in _CAPITALISED.findall(text) if w not in _EN_SKIP)
    return list(dict.fromkeys(w for w in words if len(w) > 1))


def _relation(text: str, language: str) -> str:
    when, how_many = (_WHEN_ZH, _HOW_MANY_REL_ZH) if language == "zh" else (_WHEN_EN, _HOW_MANY_REL_EN)
    if when.search(text):
        return "when"
    if how_many.search(text):
        # 多少年 / 幾年 are durations or years: a count either way.
        return "how_many"
    return ""


def question_constraints(question: str, language: str) -> QuestionConstraints:
    """The constraints of ``question`` (``language``: "zh" or "en", as detect_language decides)."""
    text = unicodedata.normalize("NFKC", question)
    relative = RELATIVE_TIMES_ZH if language == "zh" else RELATIVE_TIMES_EN
    lowered = text.lower()
    return QuestionConstraints(
        language=language,
        years=years_in(text, language),
        dates=dates_in(text),
        relative_times=[r for r in relative if r in lowered],
        units=_units(text, language),
        relation=_relation(text, language),
        names=_names(text, language),
        proper_nouns=_proper_nouns(text, language),
        content_tokens=list(dict.fromkeys(t for t in tokenize(text, COVERAGE_TOKENS) if not _QUESTION_WORD.search(t))),
    )
