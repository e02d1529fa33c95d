"""Does a message depend on the conversation before it? Pronouns and demonstratives (它/这个/其中/后者/第二种,
it/that/the latter), very short messages and elided subjects ("有多少道？", "what about English?") mark a
follow-up that cannot be retrieved on its own. A cheap rule set: a false positive costs one guarded rewrite, a
miss leaves the message as it is (the first message of a conversation is never checked)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from prompts.language import _CJK, detect_language

# Chinese references to something said before. Strong ones refer back wherever they stand; weak ones
# (demonstratives, ordinals) only at the start of the message: "困惑度这个指标…" or "…时，第二步…" refer inside the
# message itself.
# 他/她 alone too ("她从师于谁？"), but not inside 其他/吉他.
_ZH_STRONG = re.compile(r"它们?|其中|这样|那样|后者|前者|两者|二者|上述|上面(?:提到|说)的?|刚才|(?<![其吉])[他她]们?")
_ZH_WEAK = re.compile(
    r"那?(?:这|那)(?:一)?(?:个|些|种|款|类|样|篇|份|项|套|步|点|座|位|家|部|本|所|条|首|张)|这里|那里|该(?:方法|模型|技术|工具|文档|数据集|参数|项)|"
    r"此|(?:第[一二三四五六七八九十两\d]+|最后一|另一)(?:种|个|条|项|点|步|类|部分|任务|阶段)")
_ZH_WEAK_WITHIN = 2  # characters a weak reference may follow ("那这个…", "而该方法…")
# Openings that leave the subject out ("有多少…", "那…", "还有呢") and the bare "…呢？" question.
_ZH_ELIDED_START = re.compile(r"^(?:那|还|也|又|再|另外|所以|有多少|多少|有没有|是否|是不是|能不能|可以|可不可以|"
                              r"需要|用了|用的是)")
_ZH_TRAILING_NE = re.compile(r"呢\s*[？?]?\s*$")
_EN_REFERENCE = re.compile(
    r"\b(?:it|its|it's|itself|this|that|these|those|they|them|their|theirs|he|she|his|her|"
    r"the latter|the former|the (?:first|second|third|last|other) (?:one|kind|type|method|option|step)s?(?! of\b)|"
    r"the same|such|one|ones)\b", re.IGNORECASE)
_EN_ELIDED_START = re.compile(r"^\s*(?:and|also|so|then|but|what about|how about|any other)\b", re.IGNORECASE)
_EN_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")


@dataclass
class FollowUpCheck:
    """Whether the message depends on the conversation, and the cues that said so."""

    dependent: bool
    cues: list[str]


def _zh_references(message: str) -> list[re.Match[str]]:
    start = len(message) - len(message.lstrip())
    weak = [m for m in _ZH_WEAK.finditer(message) if m.start() - start <= _ZH_WEAK_WITHIN]
    return sorted([*_ZH_STRONG.finditer(message), *weak], key=lambda m: m.start())


def reference_spans(message: str, language: str) -> list[tuple[int, int]]:
    """Where the message's pronouns and demonstratives are (the rewrite guard ignores these words)."""
    found = _zh_references(message) if language == "zh" else list(_EN_REFERENCE.finditer(message))
    return [m.span() for m in found]


def detect_follow_up(message: str, zh_min_cjk_share: float, short_chars_zh: int,
                     short_words_en: int) -> FollowUpCheck:
    """The cues in ``message`` that it refers back to the conversation (none: it stands on its own)."""
    language = detect_language(message, zh_min_cjk_share)
    cues: list[str] = []
    if language == "zh":
        cues += [f"reference '{m.group()}'" for m in _zh_references(message)]
        if _ZH_ELIDED_START.search(message.strip()):
            cues.append("elided subject")
        if _ZH_TRAILING_NE.search(message):
            cues.append("'…呢' question")
        if len(_CJK.findall(message)) <= short_chars_zh and not _EN_WORD.search(message):  # a named term stands
            cues.append("short message")
    else:
        cues += [f"reference '{m.group().lower()}'" for m in _EN_REFERENCE.finditer(message)]
        if _EN_ELIDED_START.search(message):
            cues.append("elided subject")
        if len(_EN_WORD.findall(message)) <= short_words_en:
            cues.append("short message")
    return FollowUpCheck(bool(cues), list(dict.fromkeys(cues)))
