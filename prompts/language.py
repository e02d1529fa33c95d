"""Decide whether a question is Chinese or English, by the share of CJK characters among its letters."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_LATIN = re.compile(r"[A-Za-z]")


def cjk_share(text: str) -> float:
    """CJK characters / (CJK characters + Latin letters); 0.0 for text with neither."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    return cjk / (cjk + latin) if cjk + latin else 0.0


def detect_language(text: str, min_cjk_share: float) -> str:
    """"zh" when at least ``min_cjk_share`` of the letters are CJK, else "en".

    Counting Latin letters (not words) makes a Chinese question with an English term ("什么是 RAG?") stay Chinese
    while a share threshold well below 0.5 still lets a mostly-English question with one Chinese name be English.
    """
    return "zh" if cjk_share(text) >= min_cjk_share else "en"


class _Text(Protocol):
    text: str


def passages_language(passages: Iterable[_Text], min_cjk_share: float) -> str:
    """The language of passages taken together (their text as the model saw it)."""
    return detect_language("".join(p.text for p in passages), min_cjk_share)
