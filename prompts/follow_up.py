"""Does a message depend on the conversation before it? Pronouns and demonstratives (它/这个/其中/后者/第二种,
it/that/the latter), very short messages and elided subjects ("有多少道？", "what about English?") mark a
follow-up that cannot be retrieved on its own. A cheap rule set: a false positive costs one guarded rewrite, a
miss leaves the message as it is (the first message of a conversation is never checked)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from prompts.language import _CJK, detect_language

# Chinese references to something said before. "那" alone also opens elided questions ("那英文版呢？").
_ZH_REFERENCE = re.compile(
    r"它们?|这(?:个|些|种|款|类|样|篇|份|里|项|套|步|一点)|那(?:个|些|种|款|类|样|篇|份|里|项|套|么)?|其中|其|"
    r"后者|前者|上述|上面|前面|刚才|该(?:方法|模型|技术|工具|文档|数据集|参数|项)|此(?:方法|处|外)?|"
    r"第[一二三四五六七八九十两\d]+(?:种|个|条|项|点|步|类|部分)|他们?|她们?")
# Openings that leave the subject out ("有多少…", "为什么…", "还有呢") and the bare "…呢？" question.
_ZH_ELIDED_START = re.compile(r"^(?:那|还|也|又|再|另外|所以|为什么|为啥|怎么|如何|有多少|多少|有没有|是否|是不是|"
                              r"能不能|可以|可不可以|需要|用了|用的是|有哪些|哪些|哪个|哪种|什么时候|谁)")
_ZH_TRAILING_NE = re.compile(r"呢\s*[？?]?\s*$")
_EN_REFERENCE = re.compile(
    r"\b(?:it|its|it's|itself|this|that|these|those|they|them|their|theirs|he|she|his|her|"
    r"the latter|the former|the (?:first|second|third|last|other) (?:one|kind|type|method|option|step)s?|"
    r"the same|such|one|ones)\b", re.IGNORECASE)
_EN_ELIDED_START = re.compile(r"^\s*(?:and|also|so|then|but|what about|how about|what else|why|why not|"
                              r"how come|in what way|any other)\b", re.IGNORECASE)
_EN_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")


@dataclass
class FollowUpCheck:
    """Whether the message depends on the conversation, and the cues that said so."""

    dependent: bool
    cues: list[str]


def reference_spans(message: str, language: str) -> list[tuple[int, int]]:
    """Where the message's pronouns and demonstratives are (the rewrite guard ignores these words)."""
    pattern = _ZH_REFERENCE if language == "zh" else _EN_REFERENCE
    return [m.span() for m in pattern.finditer(message)]


def detect_follow_up(message: str, zh_min_cjk_share: float, short_chars_zh: int,
                     short_words_en: int) -> FollowUpCheck:
    """The cues in ``message`` that it refers back to the conversation (none: it stands on its own)."""
    language = detect_language(message, zh_min_cjk_share)
    cues: list[str] = []
    if language == "zh":
        cues += [f"reference '{m.group()}'" for m in _ZH_REFERENCE.finditer(message)]
        if _ZH_ELIDED_START.search(message.strip()):
            cues.append("elided subject")
        if _ZH_TRAILING_NE.search(message):
            cues.append("'…呢' question")
        if len(_CJK.findall(message)) <= short_chars_zh:
            cues.append("short message")
    else:
        cues += [f"reference '{m.group().lower()}'" for m in _EN_REFERENCE.finditer(message)]
        if _EN_ELIDED_START.search(message):
            cues.append("elided subject")
        if len(_EN_WORD.findall(message)) <= short_words_en:
            cues.append("short message")
    return FollowUpCheck(bool(cues), list(dict.fromkeys(cues)))
