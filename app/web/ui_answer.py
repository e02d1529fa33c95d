"""Drawing one chat turn: the streamed answer, then its sources (or, for a refusal, the passages it considered)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import streamlit as st

from app.answer.answer_pipeline import (
    AnswerEvent,
    DoneEvent,
    PassagesEvent,
    RetryEvent,
    TokenEvent,
)
from app.web.ui_render import (
    SourceView,
    answer_html,
    answer_views,
    escape_inline,
    question_html,
    scores_table,
)
from app.web.source_route import source_url
from app.web.ui_text import t
from prompts.conversation import Turn
from prompts.records import Answer

_SCORE_STAGES = ("score_dense", "score_bm25", "score_fused", "score_rerank")


@dataclass
class ChatEntry:
    """One message of the conversation as the page keeps it in session state."""

    role: str  # "user" or "assistant"
    text: str
    answer: Answer | None = None
    error: str = ""


def conversation(entries: list[ChatEntry]) -> list[Turn]:
    """The page's messages as the pipeline's history: each answered question with its answer and cited passages
    (a message that ended in an error is left out)."""
    turns = []
    for asked, reply in zip(entries, entries[1:]):
        if asked.role == "user" and reply.role == "assistant" and reply.answer is not None:
            cited = [c.passage for c in reply.answer.citations]
            turns.append(Turn(asked.text, reply.answer.text, cited))
    return turns


def searched_for(answer: Answer) -> str:
    """The standalone question a follow-up was searched for; "" when the message was used as it is."""
    standalone = answer.standalone_question
    return standalone if standalone and standalone != answer.question else ""


def render_sources(views: list[SourceView], lang: str) -> None:
    labels = {stage: t(stage, lang) for stage in _SCORE_STAGES}
    for view in views:
        with st.container(border=True):
            st.html(view.title_html)
            st.html(view.body_html)
            if view.link:
                st.link_button(t("open_source", lang), source_url(view.link, lang), icon=":material/open_in_new:")
            table = scores_table(view.scores, labels, t("rank", lang))
            if table:
                with st.expander(t("scores", lang)):
                    st.markdown(table)


def _timings_caption(answer: Answer, lang: str) -> str:
    parts = [f"{t('t_' + stage, lang)} {answer.timings[stage]:.2f} s"
             for stage in ("rewrite", "retrieve", "first_token", "generate") if stage in answer.timings]
    if "tokens_per_s" in answer.timings:
        parts.append(f"{answer.timings['tokens_per_s']:.1f} tok/s")
    return f"{t('timings', lang)}: " + " · ".join(parts) if parts else ""


def render_answer_details(answer: Answer, lang: str) -> None:
    """Everything below the answer text: the standalone question, refusal notice, unsupported sentences, sources,
    timings."""
    standalone = searched_for(answer)
    if standalone:
        st.caption(t("searched_for", lang, question=escape_inline(standalone)))
    if answer.refused:
        st.warning(t("refused", lang))
        if answer.passages:
            with st.expander(t("closest", lang), expanded=False):
                render_sources(answer_views(answer, t("page", lang), t("slide", lang)), lang)
    else:
        weak = [c.sentence for c in answer.checks if not c.supported]
        if weak:
            st.caption(t("unsupported", lang) + " " + " / ".join(escape_inline(s) for s in weak))
        if answer.citations:
            st.markdown(f"**{t('sources', lang)}**")
            render_sources(answer_views(answer, t("page", lang), t("slide", lang)), lang)
    caption = _timings_caption(answer, lang)
    if caption:
        st.caption(caption)


def render_entry(entry: ChatEntry, lang: str) -> None:
    with st.chat_message(entry.role):
        if entry.error:
            st.error(entry.error)
            return
        st.html(answer_html(entry.text) if entry.role == "assistant" else question_html(entry.text))
        if entry.answer is not None:
            render_answer_details(entry.answer, entry.answer.language or lang)


def stream_answer(events: Iterator[AnswerEvent], lang: str) -> Answer:
    """Show a streamed answer as it arrives (inside the current chat message) and return the final Answer."""
    status = st.empty()
    status.caption(t("retrieving", lang))
    body = st.empty()
    text = ""
    answer: Answer | None = None
    for event in events:
        if isinstance(event, PassagesEvent):
            status.caption(t("generating", lang))
        elif isinstance(event, TokenEvent):
            text += event.text
            body.html(answer_html(text, streaming=True))
        elif isinstance(event, RetryEvent):  # the streamed draft is withdrawn; another attempt follows
            text = ""
            status.caption(t("widening" if event.widening else "retrying", lang))
        elif isinstance(event, DoneEvent):
            answer = event.answer
    status.empty()
    if answer is None:
        raise RuntimeError("the answer stream ended without an answer")
    body.html(answer_html(answer.text))
    render_answer_details(answer, answer.language or lang)
    return answer
