"""Answers made of citation markers alone ("[1]"), or that put the marker where the answer belongs ("The model
family … is [3].", "The passage number is [3]."): the small model points at a passage without writing the answer.
Rather than show that, quote the sentence of the cited passage that shares most words with the question —
a verbatim quote, so it is grounded by construction and labelled as a quote."""

from __future__ import annotations

import re

from ingest.store.text_tokenizer import tokenize
from prompts.citations import parse_citations, remove_invalid_citations
from prompts.sentences import split_sentences
from prompts.templates import PackedPassage

_NOT_CONTENT = re.compile(r"[\s\W_]+")
# A marker standing where the answer belongs: right after a copula or "see", at the end of the answer.
_MARKER_AS_ANSWER = re.compile(r"(?:\b(?:is|are|was|were|see)|是|为|為|见|見)\s*(?:[\[【]\d+[\]】]\s*)+[.。]?\s*$",
                               re.IGNORECASE)
_QUOTE = {"zh": "资料 [{n}] 原文：“{sentence}” [{n}]", "en": 'Passage [{n}] says: "{sentence}" [{n}]'}


def is_markers_only(text: str) -> bool:
    """True when nothing but citation markers, punctuation and blanks is left of ``text``."""
    return bool(parse_citations(text)) and not _NOT_CONTENT.sub("", remove_invalid_citations(text, set()))


def points_at_passage(text: str) -> bool:
    """True when ``text`` is citation markers alone, or ends with a marker standing where the answer belongs."""
    return is_markers_only(text) or _MARKER_AS_ANSWER.search(text.strip()) is not None


def quote_cited_sentence(question: str, text: str, packed: list[PackedPassage], language: str) -> str | None:
    """The best-matching sentence of the first cited passage, as a labelled quote; None when no sentence of it
    shares a word with the question (e.g. an English question over a Chinese passage)."""
    by_number = {p.number: p for p in packed}
    cited = [n for n in parse_citations(text) if n in by_number]
    if not cited:
        return None
    question_tokens = set(tokenize(question))
    best, best_overlap = "", 0
    for sentence in split_sentences(by_number[cited[0]].text):
        overlap = len(question_tokens & set(tokenize(sentence)))
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    if not best:
        return None
    return _QUOTE["zh" if language == "zh" else "en"].format(n=cited[0], sentence=best)
