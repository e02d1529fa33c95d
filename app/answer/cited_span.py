"""Which part of a cited passage an answer drew on, so the page can highlight it and the tool can quote it."""

from __future__ import annotations

import difflib

from prompts.citations import remove_invalid_citations
from prompts.sentences import sentence_spans
from retrieval.results import ScoredChunk

# A match shorter than this many characters between an answer sentence and a passage is coincidence
# (shared particles such as "的是"), not the span the answer was drawn from.
MIN_HIGHLIGHT_MATCH = 4


def claims_citing(answer_text: str, number: int) -> list[str]:
    """The sentences of an answer that cite passage ``[number]``."""
    return [answer_text[a:b] for a, b in sentence_spans(answer_text) if f"[{number}]" in answer_text[a:b]]


def cited_span(passage: str, claims: list[str]) -> tuple[int, int] | None:
    """The passage sentence(s) holding the longest verbatim overlap with each claim, as a character span into
    ``passage``; None when no claim shares at least ``MIN_HIGHLIGHT_MATCH`` characters with it."""
    matches: list[tuple[int, int]] = []
    for claim in claims:
        claim = remove_invalid_citations(claim, set()).strip()
        if not claim:
            continue
        matcher = difflib.SequenceMatcher(None, passage, claim, autojunk=False)
        match = matcher.find_longest_match(0, len(passage), 0, len(claim))
        if match.size >= MIN_HIGHLIGHT_MATCH:
            matches.append((match.a, match.a + match.size))
    if not matches:
        return None
    covering = [s for s in sentence_spans(passage) if any(a < s[1] and b > s[0] for a, b in matches)]
    start, end = min(s[0] for s in covering), max(s[1] for s in covering)
    while end > start and passage[end - 1].isspace():
        end -= 1
    while start < end and passage[start].isspace():
        start += 1
    return (start, end)


def answer_span(passage: str, answer_text: str, number: int, question: str = "") -> tuple[int, int] | None:
    """The span of ``passage`` that the answer's sentences citing ``[number]`` drew on. A short answer ("9秒 [1]")
    may share no words with the passage: then the sentence(s) matching ``question``."""
    return cited_span(passage, claims_citing(answer_text, number)) or cited_span(passage, [question])


def chunk_span_in_context(passage: ScoredChunk) -> tuple[int, int] | None:
    """Where the retrieved chunk sits inside its neighbour-merged context text (None when not merged)."""
    if not passage.context_text or passage.context_text == passage.chunk.text:
        return None
    start = passage.context_text.find(passage.chunk.text)
    return None if start < 0 else (start, start + len(passage.chunk.text))
