"""A checked Answer as an API client sees it: the cited sources (file, page, heading, the sentence the answer drew
on) and, for clients that show only text, a sources block appended to the answer. The plain text (answer and
sources block) shows control and bidi characters escaped; the structured ``docqa`` field keeps them as they are."""

from __future__ import annotations

from app.answer.cited_span import answer_span
from app.server.openai_schema import Source
from ingest.visible_text import visible
from prompts.records import Answer
from prompts.templates import source_label

_HEADINGS = {"zh": "来源", "en": "Sources"}
_CHECKED = {"zh": "核对后的回答：", "en": "Checked answer: "}


def answer_sources(answer: Answer) -> list[Source]:
    sources = []
    for citation in answer.citations:
        passage = citation.passage
        text = citation.quoted_text
        span = answer_span(text, answer.text, citation.number, answer.question)
        quote = text[span[0]:span[1]] if span else text
        chunk = passage.chunk
        sources.append(Source(number=citation.number, base=passage.base, file=chunk.source, page=chunk.page,
                              location=chunk.page_label, heading=chunk.heading or None, quote=quote, score=float(passage.score)))
    return sources


def sources_block(answer: Answer, sources: list[Source]) -> str:
    """``\\n\\n来源：\\n[1] file p.2 — heading: “quote”`` (empty for a refusal or an answer citing nothing)."""
    if answer.refused or not sources:
        return ""
    lines = [f"\n\n{_HEADINGS.get(answer.language, 'Sources')}:"]
    # An answer over several bases names each source's base ("base · file p.N").
    several = len({p.base for p in answer.passages}) > 1
    for source, citation in zip(sources, answer.citations):
        quote = " ".join(source.quote.split())
        label = source_label(citation.passage)
        if several and citation.passage.base:
            label = f"{citation.passage.base} · {label}"
        lines.append(f"[{source.number}] {visible(label)}: “{visible(quote)}”")
    return "\n".join(lines)


def correction(answer: Answer, streamed: str, separator: str) -> str:
    """What to append when the checked answer is not the draft a client has already been streamed: nothing when
    they agree, else the checked answer (a refusal with its reason, or the corrected text)."""
    if answer.text.strip() == streamed.strip():
        return ""
    if answer.refused:
        return f"{separator}{answer.text}" + (f" ({answer.refusal_reason})" if answer.refusal_reason else "")
    return f"{separator}{_CHECKED.get(answer.language, _CHECKED['en'])}{answer.text}"


def plain_text(text: str) -> str:
    """Model or document text as a client that shows only text gets it: control and bidi characters escaped."""
    return visible(text, keep_lines=True)
