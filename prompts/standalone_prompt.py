"""The few-shot prompt that turns a follow-up message into a standalone question, and the reading of the reply.

Short on purpose: every prompt token costs ~8 ms before the first token on a 2-core CPU. The examples are made up
(no document's content) and show the three moves: resolve a pronoun, restore an elided subject, keep the
message's own words. The items the previous turn lists (or the two things it compares) are offered as choices,
so "第二种" / "the latter" has its candidates spelled out (prompts/turn_structure.py)."""

from __future__ import annotations

import re

from prompts.conversation import Turn
from prompts.templates import quote_as_data
from prompts.turn_structure import turn_structure

_SYSTEM_ZH = ("把对话中的最后一个问题改写成一个不依赖上文、可以单独理解的完整问题。"
              "用上文中的名称替换代词（它、这个、其中、后者等），补全省略的主语，保留原问题的其他词语。"
              "不要回答问题，不要添加上文没有的内容，只输出改写后的问题。")
_SYSTEM_EN = ("Rewrite the last question of the conversation as one complete question that can be understood "
              "without the conversation. Replace pronouns (it, that, the latter) with the names used earlier, "
              "restore a missing subject, keep the question's other words. Do not answer it, do not add anything "
              "the conversation does not say; output only the rewritten question.")

_EXAMPLES_ZH = [
    ("星河数据库支持哪些索引？", "星河数据库支持 B 树索引和倒排索引 [1]。", "后者适合什么场景？",
     "星河数据库的倒排索引适合什么场景？"),
    ("白鹭相机的电池能用多久？", "白鹭相机的电池可连续拍摄约 6 小时 [1]。", "充满要多久？",
     "白鹭相机的电池充满要多久？"),
]
_EXAMPLES_EN = [
    ("Which formats does the Heron editor export?", "It exports PDF and EPUB [1].", "Is the second one free?",
     "Is the Heron editor's EPUB export free?"),
    ("What does the Lark scheduler do?", "It plans jobs across machines [1].", "How does it handle failures?",
     "How does the Lark scheduler handle failures?"),
]
_LABELS = {"zh": ("问：", "答：", "改写：", "对话：", "最后的问题："),
           "en": ("Q: ", "A: ", "Rewritten: ", "Conversation:", "Last question: ")}
_CHOICES = {"zh": ("上文列出的项（按顺序）：", "；"), "en": ("Listed above, in order: ", "; ")}


def _clip(text: str, chars: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars] + "…"


def _block(turns: list[tuple[str, str]], message: str, language: str, choices: list[str] | None = None) -> str:
    q, a, _, conv, last = _LABELS[language]
    # A turn whose answer is unknown (an HTTP client that sends back only its questions) shows the question only.
    lines = [conv] + [f"{q}{question}" + (f"\n{a}{answer}" if answer else "") for question, answer in turns]
    if choices:
        label, separator = _CHOICES[language]
        lines.append(label + separator.join(choices))
    return "\n".join(lines) + f"\n{last}{message}"


def _choices(turn: Turn, language: str) -> list[str]:
    structure = turn_structure(turn.question, turn.answer, language)
    return structure.items or list(structure.pair or ())


def build_rewrite_messages(history: list[Turn], message: str, language: str, answer_chars: int) -> list[dict]:
    """Chat messages asking for the standalone form of ``message`` given the (already shortened) ``history``.
    Conversation text is quoted as data, like passages, so a pasted instruction stays text."""
    examples = _EXAMPLES_ZH if language == "zh" else _EXAMPLES_EN
    messages = [{"role": "system", "content": _SYSTEM_ZH if language == "zh" else _SYSTEM_EN}]
    for question, answer, follow_up, rewritten in examples:
        example_choices = _choices(Turn(question, answer), language)
        messages.append({"role": "user", "content": _block([(question, answer)], follow_up, language,
                                                           example_choices)})
        messages.append({"role": "assistant", "content": rewritten})
    turns = [(quote_as_data(_clip(t.question, answer_chars)), quote_as_data(_clip(t.answer, answer_chars)))
             for t in history]
    choices = [quote_as_data(c) for c in _choices(history[-1], language)] if history else []
    messages.append({"role": "user", "content": _block(turns, quote_as_data(message), language, choices)})
    return messages


_PREFIX = re.compile(r"^\s*(?:改写(?:后的问题)?|独立问题|问题|rewritten(?: question)?|standalone question|"
                     r"question|q)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’「」『』`"


def read_rewrite(reply: str) -> str:
    """The question in the model's reply: its first non-empty line, without a label, quotes or citations."""
    line = next((ln for ln in reply.splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line).strip().strip(_QUOTES).strip()
    return re.sub(r"\s*\[\d+\]", "", line).strip()
