"""Refuse before generation when the question names something the passages never mention.

A question about "GPTQ" or "HyDE" cannot be answered from passages that never contain those words, however close
their embeddings are (near-miss questions retrieve passages as close as real answers do: bench/RESULTS_ANSWER.md).
Names are the Latin-script terms of a Chinese question ("RAG 里的 HyDE 是什么") and, in an English question, the
words that cannot be ordinary words: inner capitals or digits (vLLM, GGUF, Grouped-Query, GPT-3). Plain English
words are not checked: they may be paraphrased, or asked across languages, by an answerable question."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_LATIN_TERM = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
_PARTS = re.compile(r"[A-Za-z]+|[0-9]+")
# A Chinese question's Latin terms this short (e.g. "AI") are too often written in Chinese by the documents.
_MIN_TERM_CHARS = 3


@dataclass
class NameCheck:
    missing: list[str]

    @property
    def answerable(self) -> bool:
        return not self.missing


def _is_name(term: str, language: str) -> bool:
    if not any(c.isalpha() for c in term):
        return False  # numbers are asked about, not named
    has_digit = any(c.isdigit() for c in term)
    if language == "zh":
        return has_digit or len(term) >= _MIN_TERM_CHARS
    return has_digit or any(c.isupper() for c in term[1:])


# A last part naming the plain variant of a model: documents call "Lumen-7B-base" simply "Lumen-7B" and give the
# base model's figures under that name.
_PLAIN_VARIANTS = frozenset({"base"})


def _name_pattern(name: str) -> re.Pattern[str]:
    """The name as a whole word, any case, with or without separators between its parts ("Multi-Query" finds
    "multi query", "GPT-3" finds "GPT3" and the reverse), an optional plural s, and an optional "-base"."""
    parts = _PARTS.findall(name)
    optional = ""
    if len(parts) > 1 and parts[-1].lower() in _PLAIN_VARIANTS:
        optional = r"(?:[\s\-_.]?" + re.escape(parts[-1]) + ")?"
        parts = parts[:-1]
    return re.compile(r"(?<![A-Za-z0-9])" + r"[\s\-_.]?".join(map(re.escape, parts)) + optional +
                      r"s?(?![A-Za-z0-9])", re.IGNORECASE)


def mentions(text: str, name: str) -> bool:
    """``text`` names ``name`` (as _name_pattern matches it)."""
    return _name_pattern(name).search(unicodedata.normalize("NFKC", text)) is not None


def question_names(question: str, language: str) -> list[str]:
    """The question's names, in order, without repeats."""
    terms = _LATIN_TERM.findall(unicodedata.normalize("NFKC", question))
    return list(dict.fromkeys(t for t in terms if _is_name(t, language)))


def check_question_names(question: str, language: str, passage_texts: list[str]) -> NameCheck:
    """Which of the question's names occur in none of ``passage_texts``."""
    text = unicodedata.normalize("NFKC", "\n".join(passage_texts))
    return NameCheck([name for name in question_names(question, language) if not _name_pattern(name).search(text)])
