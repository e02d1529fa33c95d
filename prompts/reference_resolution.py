"""Resolve a follow-up's references from the structure of the previous turn, without the model: "第二种" / "the
second one" → the second item the previous answer (or question) listed, "后者" / "the latter" → the second of the
two things compared, "它们各自" / "each of them" → the items, "它的" / "its" / "该方法" → the previous question's
subject (prompts/turn_structure.py).

All or nothing: a message with a reference these rules cannot resolve (an ordinal past the end of the list, "这种现象",
"their", no list to point into) is not resolved at all and goes to the LLM rewrite. Every word put in comes from
the conversation, so a resolution cannot invent a name."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from prompts.conversation import Turn
from prompts.follow_up import reference_spans
from prompts.turn_structure import TurnStructure, subject_of, turn_structure

_ZH_NUMERALS = {c: i for i, c in enumerate("一二三四五六七八九十", 1)} | {"两": 2}
_EN_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6}
_ZH_UNIT = r"(?:种|个|条|项|点|步|类|部分|阶段|款|样)"
# A generic noun after an ordinal names the kind of item, which the item itself now says ("第二种方法" → "束搜索").
_ZH_KIND = r"(?:方法|方式|技术|算法|模型|策略|步骤|措施|办法|手段|方案|工具|格式|索引|指标|阶段)?"
_ZH_LEAD = re.compile(r"^\s*(?:那么?|那)\s*[，,]?\s*")
_EN_LEAD = re.compile(r"^\s*(?:and|so|then|ok|okay)\s*,?\s+", re.IGNORECASE)
_EN_KIND = r"(?:one|kind|type|method|option|step|approach|model|format|technique|stage|way)"


@dataclass
class Resolution:
    """The message with its references replaced, and what replaced what."""

    text: str
    replaced: list[tuple[str, str]] = field(default_factory=list)


def _ordinal(word: str) -> int:
    if word.isdigit():
        return int(word)
    if len(word) == 2 and word[0] == "十":  # 十一..十九
        return 10 + _ZH_NUMERALS.get(word[1], 0)
    return _ZH_NUMERALS.get(word, 0)


def _nth(items: list[str], n: int) -> str:
    return items[n - 1] if 1 <= n <= len(items) else ""


def _zh_join(items: list[str] | tuple[str, ...]) -> str:
    return "、".join(items[:-1]) + "和" + items[-1] if len(items) > 1 else ""


def _en_join(items: list[str] | tuple[str, ...]) -> str:
    if len(items) < 2:
        return ""
    return " and ".join(items) if len(items) == 2 else ", ".join(items[:-1]) + " and " + items[-1]


def _possessive(name: str) -> str:
    return name + ("'" if name.endswith("s") else "'s") if name else ""


# (pattern, what it stands for given the structure and the subject); "" = cannot be resolved.
_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], TurnStructure, str], str]]


def _pair_part(s: TurnStructure, index: int) -> str:
    return s.pair[index] if s.pair else ""


def _items_or_pair(s: TurnStructure) -> list[str] | tuple[str, ...]:
    return s.items or (s.pair or ())


_ZH_RULES: list[_Rule] = [
    (re.compile(rf"(?:其中)?(?:的)?第(?P<n>[一二三四五六七八九十两]{{1,2}}|\d{{1,2}}){_ZH_UNIT}{_ZH_KIND}"),
     lambda m, s, _: _nth(s.items or list(s.pair or ()), _ordinal(m.group("n")))),
    (re.compile(rf"(?:其中)?(?:的)?最后一{_ZH_UNIT}{_ZH_KIND}"), lambda m, s, _: s.items[-1] if s.items else ""),
    (re.compile(r"前者"), lambda m, s, _: _pair_part(s, 0)),
    (re.compile(r"后者"), lambda m, s, _: _pair_part(s, 1)),
    (re.compile(rf"它们|他们|两者|二者|这两{_ZH_UNIT}{_ZH_KIND}|这(?:几|些){_ZH_UNIT}?{_ZH_KIND}"),
     lambda m, s, _: _zh_join(_items_or_pair(s))),
    (re.compile(r"其中"), lambda m, s, subject: subject + "中" if subject else ""),
    (re.compile(r"它的|(?<![尤极])其(?=[\u4e00-\u9fff])(?![中他它实次余余])"),
     lambda m, s, subject: subject + "的" if subject else ""),
    (re.compile(rf"(?:这|那)(?:个|种){_ZH_KIND}(?<=[法式术型略骤施段案具])|(?:该|此)(?:方法|模型|技术|算法|工具|方案)|"
                r"它|(?<![其吉])[他她]"),
     lambda m, s, subject: subject),
]
_EN_RULES: list[_Rule] = [
    (re.compile(rf"\bthe (?P<n>first|second|third|fourth|fifth|sixth) {_EN_KIND}\b", re.IGNORECASE),
     lambda m, s, _: _nth(s.items or list(s.pair or ()), _EN_ORDINALS[m.group("n").lower()])),
    (re.compile(rf"\bthe last {_EN_KIND}\b", re.IGNORECASE), lambda m, s, _: s.items[-1] if s.items else ""),
    (re.compile(r"\bthe former\b", re.IGNORECASE), lambda m, s, _: _pair_part(s, 0)),
    (re.compile(r"\bthe latter\b", re.IGNORECASE), lambda m, s, _: _pair_part(s, 1)),
    (re.compile(r"\b(?:they|them|both of them|these two|the two)\b", re.IGNORECASE),
     lambda m, s, _: _en_join(_items_or_pair(s))),
    (re.compile(r"\b(?:its|his|her)\b", re.IGNORECASE), lambda m, s, subject: _possessive(subject)),
    (re.compile(rf"\b(?:this|that) (?:{_EN_KIND[3:-1]})\b|\b(?:it(?!'s)|he|she)\b", re.IGNORECASE),
     lambda m, s, subject: subject),
]


def _subject(history: list[Turn], language: str) -> str:
    """The subject of the newest earlier question that names one ("它的…" after "它…" keeps the first subject)."""
    return next((subject for turn in reversed(history) if (subject := subject_of(turn.question, language))), "")


def _sentence_case(text: str, language: str) -> str:
    return text[:1].upper() + text[1:] if language == "en" and text else text


def resolve_references(message: str, history: list[Turn], language: str) -> Resolution | None:
    """``message`` with every reference to the previous turn replaced, or None when it has none or one of them
    cannot be resolved from the conversation's structure."""
    if not history:
        return None
    structure = turn_structure(history[-1].question, history[-1].answer, language)
    subject = _subject(history, language)
    text = (_ZH_LEAD if language == "zh" else _EN_LEAD).sub("", message.strip())
    replaced: list[tuple[str, str]] = []
    for pattern, meaning in _ZH_RULES if language == "zh" else _EN_RULES:
        pieces: list[str] = []
        last = 0
        for m in pattern.finditer(text):
            value = meaning(m, structure, subject)
            if not value:
                return None
            if language == "en" and m.start() == 0:
                value = _sentence_case(value, language)
            pieces += [text[last:m.start()], value]
            replaced.append((m.group(), value))
            last = m.end()
        text = "".join(pieces) + text[last:]
    if not replaced or reference_spans(text, language):
        return None  # nothing to resolve, or a reference the rules do not know ("这种现象", "their") is left
    return Resolution(_sentence_case(text, language), replaced)
