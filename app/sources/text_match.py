"""Finding a cited text inside a page's text when the two were extracted or normalised differently.

The stored page text comes from pypdf and ``normalize_text`` (NFKC, wrapped lines re-joined, spaces between CJK
characters dropped); pdfium's text layer keeps the printed line breaks and the original code points, and OCR adds
its own spacing. Both sides are folded the same way — NFKC, casefold, whitespace, hyphens and invisible characters
dropped — and matched on the folded forms, keeping for every folded character the index it came from, so a match
maps back to a span of the original text (a pdfium character index, an OCR line position).
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass

from ingest.chunking.normalize import RADICAL_FIXES

# Dropped when folding: a hyphen may be a line-end hyphen on one side and absent or a soft hyphen on the other.
_IGNORED = frozenset("-\u00ad\u2010\u2011")
# A fuzzy match must cover at least this share of the cited text, in pieces of at least MIN_BLOCK characters:
# below it the "match" is scattered common characters, not the cited sentence.
MIN_COVERAGE = 0.6
MIN_BLOCK = 4


@dataclass(frozen=True)
class Folded:
    """``text`` folded for matching; ``origin[i]`` is the index in the original text of folded character ``i``."""

    text: str
    origin: tuple[int, ...]


def _fold_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", RADICAL_FIXES.get(ch, ch)).casefold()
    return "".join(c for c in folded if not (c.isspace() or c in _IGNORED or unicodedata.category(c) in ("Cc", "Cf")))


def fold(text: str) -> Folded:
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        for c in _fold_char(ch):
            chars.append(c)
            origin.append(index)
    return Folded("".join(chars), tuple(origin))


def _span(haystack: Folded, start: int, end: int) -> tuple[int, int]:
    return haystack.origin[start], haystack.origin[end - 1] + 1


def _exact(needle: str, haystack: Folded, near: int | None) -> list[tuple[int, int]] | None:
    starts, at = [], haystack.text.find(needle)
    while at >= 0:
        starts.append(at)
        at = haystack.text.find(needle, at + 1)
    if not starts:
        return None
    # The same sentence may be printed twice on a page; the occurrence nearest the hint is the cited one.
    best = min(starts, key=lambda s: abs(haystack.origin[s] - near)) if near is not None else starts[0]
    return [_span(haystack, best, best + len(needle))]


def _fuzzy(needle: str, haystack: Folded) -> list[tuple[int, int]] | None:
    matcher = difflib.SequenceMatcher(None, haystack.text, needle, autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size >= MIN_BLOCK]
    if sum(b.size for b in blocks) < MIN_COVERAGE * len(needle):
        return None
    return [_span(haystack, b.a, b.a + b.size) for b in blocks]


def locate(cited: str, text: str, near: int | None = None) -> list[tuple[int, int]]:
    """Spans of ``text`` that hold ``cited`` (one span for an exact match up to spacing and normalisation, several
    for a close match, none when it is not there). ``near``: an index in ``text`` where it is expected."""
    needle = fold(cited).text
    if not needle:
        return []
    haystack = fold(text)
    return _exact(needle, haystack, near) or _fuzzy(needle, haystack) or []

