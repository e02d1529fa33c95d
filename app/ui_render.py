"""Safe Markdown for untrusted document text, and the cited-span highlight shown under each answer.

Document text (passages, file names, headings) and model output (which may echo a passage) are untrusted: a
document could carry ``<script>``, ``<img src=http://…>``, ``![x](http://…)`` or ``[link](javascript:…)``.
Everything here renders such text *literally*: every ASCII punctuation character becomes a numeric character
reference, so no Markdown, HTML, LaTeX (``$``), Streamlit directive (``:red[…]``) or autolink can form, and the page
passes the result to ``st.markdown`` without ``unsafe_allow_html``. The only markup in the output is our own.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from prompts.records import Answer, Citation
from retrieval.results import ScoredChunk

# A match shorter than this many characters between an answer sentence and a passage is coincidence
# (shared particles such as "的是"), not the span the answer was drawn from.
_MIN_HIGHLIGHT_MATCH = 4
# Passage sentence ends: Chinese and Western full stops, question and exclamation marks, and newlines.
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s|\n")
_CITATION_MARK = re.compile(r"\[(\d+)\]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_HIGHLIGHT_OPEN = ":orange-background["
_HIGHLIGHT_CLOSE = "]"


def escape_inline(text: str) -> str:
    """One line of untrusted text as Markdown that displays it literally (newlines become spaces)."""
    text = _CONTROL.sub("", text.replace("\r", " ").replace("\n", " ").replace("\t", " "))
    return "".join(f"&#{ord(ch)};" if ch.isascii() and not ch.isalnum() and ch != " " else ch for ch in text)


def escape_block(text: str, span: tuple[int, int] | None = None) -> str:
    """Untrusted multi-line text as Markdown that displays it literally, keeping its line breaks, with
    ``text[span[0]:span[1]]`` highlighted when a span is given.

    Leading spaces are dropped from each line so that no line turns into an indented code block; the highlight
    directive cannot cross lines, so each line of the span is highlighted on its own.
    """
    text = text.replace("\r\n", "\n")
    lines: list[str] = []
    offset = 0
    for raw in text.split("\n"):
        line_start, line_end = offset, offset + len(raw)
        offset = line_end + 1
        stripped = raw.strip()
        if not stripped:
            if lines and lines[-1]:
                lines.append("")
            continue
        lead = line_start + len(raw) - len(raw.lstrip())
        trail = lead + len(stripped)
        if span is None or span[1] <= lead or span[0] >= trail:
            lines.append(escape_inline(stripped))
            continue
        a, b = max(span[0], lead), min(span[1], trail)
        lines.append(escape_inline(text[lead:a]) + _HIGHLIGHT_OPEN + escape_inline(text[a:b]) + _HIGHLIGHT_CLOSE
                     + escape_inline(text[b:trail]))
    while lines and not lines[-1]:
        lines.pop()
    # A Markdown hard line break is a backslash at the end of a line; an empty line starts a new paragraph.
    return "\n".join(line + ("\\" if line and nxt else "") for line, nxt in zip(lines, lines[1:] + [""]))


def _sentence_bounds(text: str) -> list[tuple[int, int]]:
    bounds, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            bounds.append((start, match.end()))
            start = match.end()
    if start < len(text):
        bounds.append((start, len(text)))
    return bounds


def strip_citation_marks(text: str) -> str:
    return _CITATION_MARK.sub("", text)


def cited_span(passage: str, claims: list[str]) -> tuple[int, int] | None:
    """The passage sentence(s) the claims were drawn from: those holding the longest verbatim overlaps.

    Returns a character span into ``passage``, or None when no claim shares at least a few characters with it.
    """
    best: list[tuple[int, int]] = []
    for claim in claims:
        claim = strip_citation_marks(claim).strip()
        if not claim:
            continue
        matcher = difflib.SequenceMatcher(None, passage, claim, autojunk=False)
        match = matcher.find_longest_match(0, len(passage), 0, len(claim))
        if match.size >= _MIN_HIGHLIGHT_MATCH:
            best.append((match.a, match.a + match.size))
    if not best:
        return None
    sentences = _sentence_bounds(passage)
    covering = [s for s in sentences if any(a < s[1] and b > s[0] for a, b in best)]
    start, end = min(s[0] for s in covering), max(s[1] for s in covering)
    # Do not highlight the trailing newline/space of the last sentence.
    while end > start and passage[end - 1].isspace():
        end -= 1
    while start < end and passage[start].isspace():
        start += 1
    return (start, end)


def chunk_span_in_context(passage: ScoredChunk) -> tuple[int, int] | None:
    """Where the retrieved chunk sits inside its neighbour-merged context text (None when not merged)."""
    if not passage.context_text or passage.context_text == passage.chunk.text:
        return None
    start = passage.context_text.find(passage.chunk.text)
    return None if start < 0 else (start, start + len(passage.chunk.text))


def claims_citing(answer_text: str, number: int) -> list[str]:
    """The sentences of an answer that cite passage ``[number]``."""
    text = answer_text.replace("\n", " ")
    return [text[a:b] for a, b in _sentence_bounds(text) if f"[{number}]" in text[a:b]]


@dataclass
class ScoreRow:
    stage: str  # label key in app.ui_text: score_dense, score_bm25, score_fused, score_rerank
    score: float | None
    rank: int | None  # 1-based, as retrieval numbers them


@dataclass
class SourceView:
    """Everything the page shows for one cited (or considered) passage, already made safe."""

    number: int | None
    title_md: str  # "file · page · heading", escaped
    body_md: str  # the passage with the cited span highlighted, escaped
    scores: list[ScoreRow]
    source_path: str


def source_title(passage: ScoredChunk, page_label: str) -> str:
    chunk = passage.chunk
    name = chunk.source.replace("\\", "/").rsplit("/", 1)[-1] or chunk.source
    parts = [f"**{escape_inline(name)}**"]
    if chunk.page is not None:
        parts.append(escape_inline(page_label.format(page=chunk.page)))
    if chunk.heading:
        parts.append(escape_inline(chunk.heading))
    return " · ".join(parts)


def score_rows(passage: ScoredChunk) -> list[ScoreRow]:
    return [
        ScoreRow("score_dense", passage.dense_score, passage.dense_rank),
        ScoreRow("score_bm25", passage.bm25_score, passage.bm25_rank),
        ScoreRow("score_fused", passage.fused_score, passage.fused_rank),
        ScoreRow("score_rerank", passage.rerank_score, None),
    ]


def citation_view(citation: Citation, answer_text: str, page_label: str) -> SourceView:
    text = citation.quoted_text or citation.passage.text
    span = cited_span(text, claims_citing(answer_text, citation.number))
    if span is None:
        span = chunk_span_in_context(citation.passage) if text == citation.passage.context_text else None
    return SourceView(citation.number, source_title(citation.passage, page_label), escape_block(text, span),
                      score_rows(citation.passage), citation.passage.chunk.source)


def passage_view(passage: ScoredChunk, page_label: str, number: int | None = None) -> SourceView:
    """A passage that was considered but not cited (e.g. for a refusal): the retrieved chunk is highlighted."""
    return SourceView(number, source_title(passage, page_label),
                      escape_block(passage.text, chunk_span_in_context(passage)),
                      score_rows(passage), passage.chunk.source)


def answer_views(answer: Answer, page_label: str, max_considered: int) -> list[SourceView]:
    """The sources to show under an answer: its citations, or for a refusal the closest passages it considered."""
    if answer.citations and not answer.refused:
        return [citation_view(c, answer.text, page_label) for c in answer.citations]
    return [passage_view(p, page_label, i) for i, p in enumerate(answer.passages[:max_considered], start=1)]


def scores_table(rows: list[ScoreRow], labels: dict[str, str], rank_label: str) -> str:
    """A small Markdown table of per-stage scores (numbers only; labels are our own)."""
    lines = [f"| | score | {rank_label} |", "|---|---:|---:|"]
    for row in rows:
        if row.score is None and row.rank is None:
            continue
        score = "–" if row.score is None else f"{row.score:.4f}"
        rank = "–" if row.rank is None else str(row.rank)
        lines.append(f"| {labels[row.stage]} | {score} | {rank} |")
    return "\n".join(lines) if len(lines) > 2 else ""
