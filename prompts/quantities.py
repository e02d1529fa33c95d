"""Numbers as documents write them: "1.2万名", "两颗", "二〇二三年", "三月十日", "百分之五点一", "412 道".

Chinese numerals are read by cn2an (``transform`` turns the numerals inside a text into Arabic figures,
``cn2an(..., "smart")`` reads a figure with a 万/亿 multiplier), so the checks see one notation: the year asked and
the year written compare as numbers, a count of people is found in "1.2万名学生", and an answer's figures can be
compared with, and derived from, the figures of the sentence it cites (prompts/claim_check.py)."""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass

import cn2an

# A figure, an optional multiplier, an optional "more than" (多, 余), then the unit or classifier that follows:
# a percent sign, one or two CJK characters of a known unit, or an English word.
_QUANTITY = re.compile(r"(?<![\d.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(万亿|万|亿|千|百)?\s*([多余餘]?)\s*"
                       r"(%|‰|[\u4e00-\u9fff]{1,2}|[A-Za-z]+)?")
# Counting words that count people ("多少人" is answered "1.2万名学生", "37位", "3.5万人次").
PEOPLE_UNITS = frozenset({"人", "名", "位", "人次", "员", "口", "个人", "個人"})
# Two-character units read whole; any other two characters keep only the first as the unit ("名学" → "名").
TWO_CHAR_UNITS = frozenset({"公里", "公尺", "公分", "公斤", "公顷", "公頃", "平方", "英里", "英尺", "美元", "港元", "日元",
                            "欧元", "歐元", "人次", "小时", "小時", "分钟", "分鐘", "千米", "千克", "毫米", "厘米", "釐米",
                            "台币", "台幣", "光年", "海里", "英镑", "英鎊", "个月", "個月", "个人", "個人"})
# Units that measure the same thing: a figure in any of them answers a "how many/much" asked in another.
UNIT_GROUPS = (
    PEOPLE_UNITS,
    frozenset({"米", "公里", "千米", "公尺", "公分", "厘米", "釐米", "毫米", "英里", "英尺", "里", "海里", "光年"}),
    frozenset({"吨", "噸", "公斤", "千克", "克", "斤", "磅"}),
    frozenset({"元", "美元", "港元", "日元", "欧元", "歐元", "英镑", "英鎊", "台币", "台幣", "块", "塊"}),
    frozenset({"平方", "公顷", "公頃", "亩", "畝"}),
    frozenset({"小时", "小時", "分钟", "分鐘", "秒", "天", "日", "周", "週", "个月", "個月", "年"}),
)


def unit_group(unit: str) -> frozenset[str]:
    """The units measuring what ``unit`` measures (itself alone when it is in no group)."""
    return next((g for g in UNIT_GROUPS if unit in g), frozenset({unit}))


# A standalone 两/兩 (cn2an reads 两百, 两万三千 but not 两颗): two.
_TWO = re.compile(r"[两兩](?=[\u4e00-\u9fff])")


@dataclass(frozen=True)
class Quantity:
    """One figure of a text: its value (multiplier applied), the unit or classifier written after it ("" if none),
    and the text it was read from (in Arabic notation)."""

    value: float
    unit: str
    text: str

    @property
    def counts_people(self) -> bool:
        return self.unit in PEOPLE_UNITS


def to_arabic(text: str) -> str:
    """``text`` NFKC-normalised with its Chinese numerals written as Arabic figures ("二〇二三年三月十日" →
    "2023年3月10日", "两颗" → "2颗")."""
    text = unicodedata.normalize("NFKC", text)
    with warnings.catch_warnings():  # cn2an warns about each numeral-like character it leaves alone
        warnings.simplefilter("ignore")
        try:
            text = cn2an.transform(text, "cn2an")
        except (ValueError, KeyError, IndexError):  # a numeral cn2an cannot read: the text as it was
            pass
    return _TWO.sub("2", text)


def _unit(raw: str | None) -> str:
    if not raw:
        return ""
    if raw in TWO_CHAR_UNITS or not ("\u4e00" <= raw[0] <= "\u9fff"):
        return raw
    return raw[0]


def read_quantities(text: str) -> list[Quantity]:
    """Every figure of ``text`` with the unit written after it, in order."""
    found = []
    for m in _QUANTITY.finditer(to_arabic(text)):
        figure, multiplier, _, unit = m.groups()
        digits = figure.replace(",", "")
        try:
            value = float(cn2an.cn2an(digits + (multiplier or ""), "smart")) if multiplier else float(digits)
        except (ValueError, KeyError, IndexError):
            value = float(digits)
        unit = _unit(unit)
        space = " " if unit[:1].isascii() and unit[:1].isalpha() else ""  # "374 companies", "12名"
        found.append(Quantity(value, unit, f"{figure}{multiplier or ''}{space}{unit}"))
    return found


# Figures that say WHICH thing a text is about rather than how much of it: a measure ("100米自由泳", "23岁时") or
# an edition, line or phase ("第五届", "6号线", "二期"). A question pinning one and evidence giving only another of
# the same kind ("200米", "第四届", "一期") is a near miss, like another year (prompts/evidence_match.py).
MEASURE_UNITS = frozenset().union(*UNIT_GROUPS[1:5]) | {"岁", "歲"}
ORDINAL_UNITS = frozenset({"号", "號", "期", "届", "屆"})


def pinning_figures(text: str) -> list[Quantity]:
    """The figures of ``text`` in a measure unit or an edition/line/phase (Chinese)."""
    return [q for q in read_quantities(text) if q.unit in MEASURE_UNITS or q.unit in ORDINAL_UNITS]


def other_figures(asked: list[Quantity], evidence: str) -> list[tuple[Quantity, list[Quantity]]]:
    """Each asked figure that ``evidence`` gives only other values of, in the same unit (group), with those."""
    given = pinning_figures(evidence)
    found = []
    for figure in asked:
        units = unit_group(figure.unit) if figure.unit in MEASURE_UNITS else frozenset({figure.unit})
        same_kind = [q for q in given if q.unit in units]
        if same_kind and not any(same_value(q.value, figure.value) for q in same_kind):
            found.append((figure, same_kind))
    return found


def same_value(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
