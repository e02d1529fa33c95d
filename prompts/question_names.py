"""Refuse before generation when the question names something the passages never mention.

A question about "GPTQ" or "HyDE" cannot be answered from passages that never contain those words, however close
their embeddings are (near-miss questions retrieve passages as close as real answers do: bench/RESULTS_ANSWER.md).
Names are the Latin-script terms of a Chinese question ("RAG 里的 HyDE 是什么") and, in an English question, the
words that cannot be ordinary words: inner capitals or digits (vLLM, GGUF, Grouped-Query, GPT-3). Plain English
words are not checked: they may be paraphrased, or asked across languages, by an answerable question. Chinese words
are checked only in one narrow shape, the two-word term a question defines or asks the working of ("投机解码是怎么
做的？": subject_terms), and found when each word is written somewhere in the passages."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import rjieba

from prompts.follow_up import reference_spans
from prompts.turn_structure import subject_of

LATIN_TERM = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
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
PLAIN_VARIANTS = frozenset({"base"})


def _name_pattern(name: str) -> re.Pattern[str]:
    """The name as a whole word, any case, with or without separators between its parts ("Multi-Query" finds
    "multi query", "GPT-3" finds "GPT3" and the reverse), an optional plural s, and an optional "-base"."""
    parts = _PARTS.findall(name)
    optional = ""
    if len(parts) > 1 and parts[-1].lower() in PLAIN_VARIANTS:
        optional = r"(?:[\s\-_.]?" + re.escape(parts[-1]) + ")?"
        parts = parts[:-1]
    return re.compile(r"(?<![A-Za-z0-9])" + r"[\s\-_.]?".join(map(re.escape, parts)) + optional +
                      r"s?(?![A-Za-z0-9])", re.IGNORECASE)


def mentions(text: str, name: str) -> bool:
    """``text`` names ``name`` (as _name_pattern matches it)."""
    return _name_pattern(name).search(unicodedata.normalize("NFKC", text)) is not None


def question_names(question: str, language: str) -> list[str]:
    """The question's names, in order, without repeats."""
    terms = LATIN_TERM.findall(unicodedata.normalize("NFKC", question))
    return list(dict.fromkeys(t for t in terms if _is_name(t, language)))


# A Chinese subject term: the term a question defines or asks about as a thing — "什么是X", "X是什么", "X是怎么做的",
# "X是如何…" — when it is a compound of two Chinese words ("投机解码": 投机 + 解码; a Latin part is a name already, a
# "的" phrase or a clause is a description). It counts as written when each of its words occurs in the passages,
# in part (_subject_written): paraphrase reorders and shortens a compound ("采样解码" is written "解码……采样").
# Subjects before other predicates ("借助知识图谱减少幻觉有什么缺点") are clauses as often as names, and longer
# compounds chain qualifiers: bench/subject_term_check.py counted the false refusals of each wider rule.
_DEFINED = re.compile(r"^(?:请问)?\s*什[么麼]是\s*(?P<term>[\u4e00-\u9fff]+)\s*[？?]?$")
_CJK_TERM = re.compile(r"^[\u4e00-\u9fff]{4,12}$")
_COPULA = "是"
# Two words of two or more characters, a modifier and a head ("投机解码"): a longer subject chains qualifiers the
# passages leave out ("中國黑龍江省伊春市" over passages that say "伊春市"), a one-character word is a function word.
_COMPOUND_WORDS = 2
_MIN_WORD_CHARS = 2


def subject_terms(question: str, language: str) -> list[str]:
    """The Chinese subject term of a Chinese question, as a list ([] for none)."""
    if language != "zh":
        return []
    text = unicodedata.normalize("NFKC", question).strip()
    defined = _DEFINED.match(text)
    if defined:
        term = defined.group("term")
    else:
        term = subject_of(text, language)
        if not term or not text[text.find(term) + len(term):].lstrip().startswith(_COPULA):
            return []
    words = rjieba.cut(term)
    if not _CJK_TERM.match(term) or len(words) != _COMPOUND_WORDS or any(len(w) < _MIN_WORD_CHARS for w in words):
        return []
    # "最后一种是谁提出的？" judged without its conversation points back, it names nothing.
    return [] if reference_spans(term, language) else [term]


def _subject_written(term: str, text: str) -> bool:
    """Each word of ``term`` has one of its two-character pieces in ``text`` ("藏书量" is written as "藏书", "黑龍江省"
    as "黑龍江"); a two-character word must be written as it is."""
    return all(any(w[i:i + 2] in text for i in range(len(w) - 1)) for w in rjieba.cut(term))


def check_question_names(question: str, language: str, passage_texts: list[str], subjects: bool = True) -> NameCheck:
    """Which of the question's names (and, with ``subjects``, its Chinese subject term) occur in none of
    ``passage_texts``."""
    text = unicodedata.normalize("NFKC", "\n".join(passage_texts))
    missing = [name for name in question_names(question, language) if not _name_pattern(name).search(text)]
    if subjects:
        missing += [t for t in subject_terms(question, language) if not _subject_written(t, text)]
    return NameCheck(missing)
