"""The SQuAD / CMRC answer F1: how much of an answer is the expected span. English: word overlap after lower-casing
and dropping punctuation and articles (SQuAD's official normalisation); Chinese: character overlap without
punctuation (CMRC's). A long quote holding the answer scores low, a short exact answer 1.0; citation markers and
a "Passage [n] says:" label are not part of the answer."""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

_MARKERS = re.compile(r"\[\d+\]|【\d+】")
_LABEL = re.compile(r'^(?:Passage \[\d+\] says:|资料 \[\d+\] 原文：)')
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | set("，。、；：？！“”‘’（）《》【】「」『』—…·")


def _tokens(text: str, language: str) -> list[str]:
    text = _MARKERS.sub(" ", _LABEL.sub("", unicodedata.normalize("NFKC", text).strip()))
    text = "".join(" " if c in _PUNCT else c for c in text.lower())
    if language == "zh":
        return [c for c in text if not c.isspace()]
    return _ARTICLES.sub(" ", text).split()


def f1(answer: str, expected: list[str], language: str) -> float:
    """The best F1 of ``answer`` against any of ``expected``."""
    got = _tokens(answer, language)
    best = 0.0
    for gold in expected:
        want = _tokens(gold, language)
        common = sum((Counter(got) & Counter(want)).values())
        if common:
            precision, recall = common / len(got), common / len(want)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best
