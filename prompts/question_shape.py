"""What a question asks for: a year, a date, a time, a count (in which unit), a quantity, a list, or anything else.

The answer checks need this to tell an answer of the right kind from a near miss, and the repair prompt to ask for
the unit or the whole list. Built from real question shapes (tests/test_question_shape.py): "几几年" asks a year, not
a count; "分哪几步" asks which steps (a list), "要几步" how many; "多少人" is answered by any counting word for people
("1.2万名学生"); "排放多少二氧化碳" asks an amount of a substance, whose unit the question does not say; "几颗卫星"
counts with a classifier, which any count satisfies. Chinese (simplified and traditional) and English."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from prompts.quantities import PEOPLE_UNITS, TWO_CHAR_UNITS, UNIT_GROUPS

YEAR, DATE, TIME, COUNT, QUANTITY, LIST = "year", "date", "time", "count", "quantity", "list"

_YEAR_ZH = re.compile(r"[幾几]{2}年|哪一?年|何年|什[么麼]年份|哪[個个]年份")
_DATE_ZH = re.compile(r"[幾几]月[幾几][日號号]|[幾几][號号]|哪一?天|何日|哪[個个]日子")
# 什么时候 is left out: it as often asks for a condition ("什么时候用 BERT 就够了") as for a time.
_TIME_ZH = re.compile(r"何時|何时|哪一?[個个]?月|哪[個个]朝代|哪一?[個个]?[時时]期|何[時时]期|哪[個个]年代|哪[個个]世[紀纪]|[幾几]月(?![幾几])")
# "哪几步", "哪些", "有哪几类": the items themselves; the classifier after 哪几 names what is listed.
_LIST_ZH = re.compile(r"哪[幾几]([\u4e00-\u9fff])?|哪些|有什[么麼]")
# "多少" / "几" and what follows: an optional 个, then the unit (one or two characters).
_HOW_MANY_ZH = re.compile(r"(?:多少|[幾几](?![幾几]))([個个])?([\u4e00-\u9fff]{0,2})")
# Classifiers: a count in any unit answers them ("几颗卫星" → "2颗" or "两枚" alike), so they require no unit.
CLASSIFIERS_ZH = frozenset("個个名位次種种項项件條条座家所支隻只張张本部颗顆枚艘架辆輛台臺匹头頭棵株片块塊间間层層栋棟"
                           "幢道步届屆场場席票首篇章节節款门門批组組队隊户戶类類起例封份轮輪期届")
# After 多少 these are not units: 年 (a year or a duration), 岁 (an age), 时 (多少时: "at what value"), 钱 (money is written in 元, 万, 美元 …),
# 倍/度/分 (written with many words).
AMBIGUOUS_ZH = frozenset("歲岁时時钱錢倍度分年")
# "哪几年", "哪几天": times, not lists.
_NOT_LISTS = frozenset("年月天日")
_MEASURE_UNITS = frozenset(u for g in UNIT_GROUPS for u in g) | TWO_CHAR_UNITS

_YEAR_EN = re.compile(r"\b(?:what|which)\s+year\b|\bin\s+what\s+year\b", re.IGNORECASE)
_DATE_EN = re.compile(r"\b(?:what|which)\s+(?:date|day)\b", re.IGNORECASE)
_TIME_EN = re.compile(r"^\s*(?:in\s+)?when\b|\bwhat\s+(?:century|decade|month|time\s+period|era)\b|"
                      r"\bwhich\s+(?:century|decade|month|era)\b|\bhow\s+long\s+ago\b", re.IGNORECASE)
_HOW_MANY_EN = re.compile(r"\bhow\s+(many|much)\b(?:\s+([a-z]+))?", re.IGNORECASE)
_LIST_EN = re.compile(r"\b(?:what|which)\s+(?:are|were)\s+the\b|\bname\s+(?:the|all)\b|\blist\b|"
                      r"\bwhat\s+(?:steps|stages|kinds|types)\b", re.IGNORECASE)
_PEOPLE_EN = frozenset({"people", "persons", "residents", "inhabitants", "students", "workers", "employees",
                        "members", "soldiers", "volunteers", "players", "visitors", "deaths", "casualties",
                        "children", "men", "women"})


@dataclass(frozen=True)
class AskedFor:
    """``kind``: year, date, time, count, quantity, list or "" (who/what/where/why: any noun or clause answers
    it). ``unit``: the unit a count or quantity is asked in ("公里"; "" when any unit answers it; for a count of
    people one of PEOPLE_UNITS). ``people``: a count of people, which any counting word for people answers."""

    kind: str = ""
    unit: str = ""
    people: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind in (YEAR, DATE, COUNT, QUANTITY)


def _zh_how_many(text: str) -> AskedFor | None:
    m = _HOW_MANY_ZH.search(text)
    if not m:
        return None
    classifier, after = m.groups()
    if classifier:  # "多少个专家", "几个城市": a count, any count
        return AskedFor(COUNT)
    two, one = after[:2], after[:1]
    if one == "人":  # "多少人", "多少人次", "多少人口": any counting word for people answers it
        return AskedFor(COUNT, "人", people=True)
    if two in _MEASURE_UNITS and len(two) == 2:
        return AskedFor(QUANTITY, two)
    if one in AMBIGUOUS_ZH or not one:
        return AskedFor(QUANTITY)
    if one in CLASSIFIERS_ZH:
        return AskedFor(COUNT)
    if one in _MEASURE_UNITS:
        return AskedFor(QUANTITY, one)
    # "排放多少二氧化碳", "有多少游客": a noun, not a unit; the documents choose the unit.
    return AskedFor(QUANTITY)


def _en_how_many(text: str) -> AskedFor | None:
    m = _HOW_MANY_EN.search(text)
    if not m:
        return None
    many, noun = m.group(1).lower(), (m.group(2) or "").lower()
    if many == "many":
        return AskedFor(COUNT, people=noun in _PEOPLE_EN)
    return AskedFor(QUANTITY)


def asked_for(question: str, language: str) -> AskedFor:
    """What ``question`` asks for (``language``: "zh" or "en", as detect_language decides)."""
    text = unicodedata.normalize("NFKC", question)
    if language == "zh":
        if _YEAR_ZH.search(text):
            return AskedFor(YEAR)
        if _DATE_ZH.search(text):
            return AskedFor(DATE)
        if _TIME_ZH.search(text):
            return AskedFor(TIME)
        listed = _LIST_ZH.search(text)
        if listed and (listed.group(1) or "") not in _NOT_LISTS:
            return AskedFor(LIST)
        return _zh_how_many(text) or AskedFor()
    if _YEAR_EN.search(text):
        return AskedFor(YEAR)
    if _DATE_EN.search(text):
        return AskedFor(DATE)
    if _TIME_EN.search(text):
        return AskedFor(TIME)
    return _en_how_many(text) or (AskedFor(LIST) if _LIST_EN.search(text) else AskedFor())
