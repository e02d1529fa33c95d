"""Safe rendering of untrusted text on the chat page: passages, file names, headings and model output.

A document could carry ``<script>``, ``<img src=http://…>``, ``![x](http://…)``, ``[link](javascript:…)`` or a bare
URL. Blocks of such text go to ``st.html`` fully HTML-escaped: no Markdown is interpreted at all (so no image,
link or autolink can form) and Streamlit's DOMPurify runs on top; the only tags are our own (``<mark>`` for the
cited span). Short labels that must sit inside Markdown (sidebar, messages) use ``escape_inline``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from app.answer.cited_span import answer_span, chunk_span_in_context
from app.sources.cited_chunk import doc_prefix
from ingest.visible_text import visible
from prompts.records import Answer, Citation
from retrieval.results import ScoredChunk

# GFM autolinks form from "scheme:", "www." and "user@host" even in escaped text; a word joiner (U+2060,
# invisible) before ":" / "." / "@" keeps them from matching.
_AUTOLINK_PARTS = re.compile(r"(?<=[A-Za-z0-9])(?=[:@])|(?i:(?<=www)(?=\.))")
_CITATIONS = re.compile(r"(?:\[\d+\])+")
_BLOCK_STYLE = "white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.6;"
_MARK_STYLE = "background-color: rgba(255, 196, 0, 0.35); padding: 0 1px; border-radius: 2px;"
_CITATION_STYLE = "color: #1f6feb; font-weight: 600;"
_CURSOR = "▌"
# The cited sentence(s) a source link carries; a longer citation is marked from its start (the link stays short).
MAX_LINK_QUOTE_CHARS = 600


def _clean(text: str) -> str:
    """Line breaks made uniform; control and bidi characters shown as escapes (a bidi override in a file name or a
    passage would otherwise reorder what the page displays)."""
    return visible(text.replace("\r\n", "\n").replace("\r", "\n"), keep_lines=True)


def escape_inline(text: str) -> str:
    """One line of untrusted text as Markdown that shows it literally: every ASCII punctuation character becomes a
    character reference (no Markdown, HTML, LaTeX ``$`` or ``:directive[]`` can form) and autolinks are broken."""
    text = _AUTOLINK_PARTS.sub("\u2060", _clean(text).replace("\n", " ").replace("\t", " "))
    return "".join(f"&#{ord(ch)};" if ch.isascii() and not ch.isalnum() and ch != " " else ch for ch in text)


def block_html(text: str, span: tuple[int, int] | None = None, css_class: str = "docqa-passage") -> str:
    """Untrusted text as escaped HTML keeping its line breaks, with ``text[span[0]:span[1]]`` in ``<mark>``."""
    if span is not None and 0 <= span[0] < span[1] <= len(text):
        a, b = span  # offsets into the text as given: it is cleaned piece by piece after cutting
        body = (html.escape(_clean(text[:a]).lstrip("\n")) + f'<mark style="{_MARK_STYLE}">'
                + html.escape(_clean(text[a:b])) + "</mark>" + html.escape(_clean(text[b:]).rstrip("\n")))
    else:
        body = html.escape(_clean(text).strip("\n"))
    return f'<div class="{css_class}" style="{_BLOCK_STYLE}">{body}</div>'


def question_html(text: str) -> str:
    """The user's question, escaped (it may be pasted from a document)."""
    return block_html(text.strip(), css_class="docqa-question")


def answer_html(text: str, streaming: bool = False) -> str:
    """Model output (which may echo a document) as escaped HTML, with its [n] citation markers coloured."""
    pieces, last = [], 0
    cleaned = _clean(text).strip()
    for match in _CITATIONS.finditer(cleaned):
        pieces.append(html.escape(cleaned[last:match.start()]))
        pieces.append(f'<span style="{_CITATION_STYLE}">{html.escape(match.group())}</span>')
        last = match.end()
    pieces.append(html.escape(cleaned[last:]))
    cursor = _CURSOR if streaming else ""
    return f'<div class="docqa-answer" style="{_BLOCK_STYLE}">{"".join(pieces)}{cursor}</div>'


@dataclass
class ScoreRow:
    stage: str  # label key in app.web.ui_text: score_dense, score_bm25, score_fused, score_rerank
    score: float | None
    rank: int | None  # 1-based, as retrieval numbers them


@dataclass
class SourceView:
    """Everything the page shows for one cited (or considered) passage, already made safe."""

    number: int | None
    title_html: str  # "[n] file · page · heading", escaped
    body_html: str  # the passage with the cited span highlighted, escaped
    scores: list[ScoreRow]
    source_path: str
    # The query of the source page's link that opens the original at the cited place (app/web/source_page.py).
    link: dict[str, str] = field(default_factory=dict)


def source_link(passage: ScoredChunk, quote: str) -> dict[str, str]:
    """The source page's query for ``passage``: its base, chunk id, document (content-hash prefix, so a re-indexed
    base does not show another text under an old id) and the cited sentence(s) to mark ("": the whole chunk)."""
    link = {"chunk": str(passage.chunk.chunk_id), "doc": doc_prefix(passage.chunk)}
    if passage.base:
        link["base"] = passage.base
    if quote.strip():
        link["quote"] = quote[:MAX_LINK_QUOTE_CHARS]
    return link


def source_title(passage: ScoredChunk, page_label: str, number: int | None, slide_label: str = "",
                 show_base: bool = False) -> str:
    """"[n] base · file · page · heading" (the base when the answer drew on several)."""
    chunk = passage.chunk
    if chunk.is_slide and slide_label:
        page_label = slide_label
    name = chunk.source.replace("\\", "/").rsplit("/", 1)[-1] or chunk.source
    parts = [f"<b>{html.escape(visible(name))}</b>"]
    if show_base and passage.base:
        parts.insert(0, html.escape(visible(passage.base)))
    if chunk.page is not None:
        parts.append(html.escape(page_label.format(page=chunk.page)))
    if chunk.heading:
        parts.append(html.escape(visible(chunk.heading)))
    prefix = f'<span style="{_CITATION_STYLE}">[{number}]</span> ' if number is not None else ""
    return f'<div class="docqa-source-title">{prefix}{" · ".join(parts)}</div>'


def score_rows(passage: ScoredChunk) -> list[ScoreRow]:
    return [
        ScoreRow("score_dense", passage.dense_score, passage.dense_rank),
        ScoreRow("score_bm25", passage.bm25_score, passage.bm25_rank),
        ScoreRow("score_fused", passage.fused_score, passage.fused_rank),
        ScoreRow("score_rerank", passage.rerank_score, None),
    ]


def citation_view(citation: Citation, answer_text: str, page_label: str, question: str = "",
                  slide_label: str = "", show_base: bool = False) -> SourceView:
    """A cited passage as the model saw it, with the sentence(s) the answer drew on highlighted. A short answer
    ("9秒 [1]") may share no words with the passage; then the sentence matching the question is highlighted, and
    failing that the retrieved chunk inside its merged neighbours."""
    text = citation.quoted_text or citation.passage.text
    span = answer_span(text, answer_text, citation.number, question)
    # The sentence the answer drew on is what the original marks; without one, the whole chunk.
    quote = text[span[0]:span[1]] if span is not None else ""
    if span is None and text == citation.passage.context_text:
        span = chunk_span_in_context(citation.passage)
    return SourceView(citation.number,
                      source_title(citation.passage, page_label, citation.number, slide_label, show_base),
                      block_html(text, span), score_rows(citation.passage), citation.passage.chunk.source,
                      source_link(citation.passage, quote))


def passage_view(passage: ScoredChunk, page_label: str, number: int | None = None,
                 slide_label: str = "", show_base: bool = False) -> SourceView:
    """A passage that was considered but not cited (e.g. for a refusal): the retrieved chunk is highlighted."""
    return SourceView(number, source_title(passage, page_label, number, slide_label, show_base),
                      block_html(passage.text, chunk_span_in_context(passage)),
                      score_rows(passage), passage.chunk.source, source_link(passage, ""))


def answer_views(answer: Answer, page_label: str, slide_label: str = "") -> list[SourceView]:
    """The sources to show under an answer: its citations, or for a refusal the passages it considered; each names
    its knowledge base when the passages came from several."""
    several = len({p.base for p in answer.passages}) > 1
    if answer.citations and not answer.refused:
        return [citation_view(c, answer.text, page_label, answer.question, slide_label, several)
                for c in answer.citations]
    return [passage_view(p, page_label, i, slide_label, several) for i, p in enumerate(answer.passages, start=1)]


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
