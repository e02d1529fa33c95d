"""The answer itself for a draft that is only a citation marker ("[1]"): ask the model to copy, from the cited
passage, the few words that answer the question, and keep them only if they stand verbatim in that passage.

The packaged 1.5B model often answers an English question with the marker alone; quoting the whole cited sentence
(prompts/marker_only_answer.py) keeps it grounded but is not an answer ("Passage [1] says: …" for "who"). A copied
span is grounded by construction like the quote, and short like an answer; when the model's words are not in the
passage, or run over a set share of it (a quote, not an answer), the quote stands."""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol

from prompts.templates import PackedPassage, quote_as_data


class ShortWriter(Protocol):
    def write(self, messages: list[dict], max_new_tokens: int) -> str:
        """The model's greedy reply to the chat prompt ``messages``, at most ``max_new_tokens`` tokens."""
        ...


_SYSTEM = {"zh": "你从资料中原样摘录答案。", "en": "You copy answers out of a passage, word for word."}
_ASK = {"zh": "<passage>\n{passage}\n</passage>\n\n问题：{question}\n"
              "从资料中原样摘出回答这个问题的那几个词（人名、数字、日期或短语），不要写别的。",
        "en": "<passage>\n{passage}\n</passage>\n\nQuestion: {question}\n"
              "Copy from the passage the few words that answer the question (a name, number, date or short phrase), "
              "exactly as written. Write nothing else."}
# A span never splits a number or a Latin word of the passage ("0" out of "2020", "thym" out of "thymus").
_WHOLE = r"(?<![A-Za-z0-9]){0}(?![A-Za-z0-9])"
# Quotes, brackets and end punctuation the model puts around a copied span; not part of it.
_WRAPPING = " \t\r\n\"'“”‘’「」『』《》()（）[]。．.，,；;：:!！?？"


def extraction_messages(question: str, passage: str, language: str) -> list[dict]:
    """The prompt asking for the span of ``passage`` that answers ``question``."""
    lang = "zh" if language == "zh" else "en"
    return [{"role": "system", "content": _SYSTEM[lang]},
            {"role": "user", "content": _ASK[lang].format(passage=quote_as_data(passage), question=question)}]


def verbatim_span(reply: str, passage: str, max_share: float) -> str | None:
    """The first line of ``reply`` without its wrapping, as ``passage`` writes it (NFKC, any case, any spacing),
    when it stands there as whole words and numbers and is at most ``max_share`` of the passage's length; None
    otherwise."""
    line = reply.strip().splitlines()[0] if reply.strip() else ""
    words = unicodedata.normalize("NFKC", line).strip(_WRAPPING).split()
    if not words:
        return None
    text = unicodedata.normalize("NFKC", passage)
    pattern = _WHOLE.format(r"\s*".join(re.escape(w) for w in words))
    found = re.search(pattern, text, re.IGNORECASE)
    if found is None or len(found.group()) > max_share * len(text.strip()):
        return None
    return found.group()


def extract_span(writer: ShortWriter, question: str, passage: PackedPassage, language: str, max_new_tokens: int,
                 max_share: float) -> str | None:
    """The answer copied from ``passage`` as "span [n]", or None when the model wrote no verbatim span."""
    reply = writer.write(extraction_messages(question, passage.text, language), max_new_tokens)
    span = verbatim_span(reply, passage.text, max_share)
    return None if span is None else f"{span} [{passage.number}]"
