"""Split text into sentences (Chinese and English) so passages are trimmed and answers checked at sentence ends."""

from __future__ import annotations

import re

# A sentence ends after Chinese end punctuation (optionally followed by closing quotes/brackets), after English
# end punctuation followed by whitespace, or at a line break.
_SENTENCE_END = re.compile(
    r"(?<=[。！？；!?])[”’」』）)\]\"']*"
    r"|(?<=[.!?;])[\"')\]]*(?=\s)"
    r"|\n+"
)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with their end punctuation kept; joining them gives back the text minus line breaks
    and surrounding blanks."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each sentence end in ``text``: prefixes ``text[:end]`` end at a sentence boundary."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() > 0]
    if not ends or ends[-1] != len(text):
        ends.append(len(text))
    spans = []
    start = 0
    for end in ends:
        if text[start:end].strip():
            spans.append((start, end))
        start = end
    return spans
