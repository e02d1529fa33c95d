"""The chat page, the workspace's default page: questions about the documents of the chosen knowledge base; answers
stream in with their sources, and the sidebar shows the base, the retrieval and generation settings, and an upload
box feeding the same incremental ingest as ``python -m ingest``. Each base keeps its own conversation. Document text
is rendered literally (app/web/ui_render.py): nothing from a document can run or load in the browser.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app.answer.answer_pipeline import AskOptions, QuestionError
from app.config import ConfigError, Settings
from app.generation.base import GenerationError
from app.web.chosen_base import render_base_choice
from app.web.components import is_loaded, load_pipeline, read_kb_status
from app.web.page_frame import page_settings
from app.web.ui_answer import ChatEntry, conversation, render_entry, stream_answer
from app.web.ui_render import escape_inline
from app.web.ui_sidebar import render_kb_status, render_settings, render_upload
from app.web.ui_text import choose_language, t
from app.wiring import kb_notices
from ingest.store.knowledge_base import KnowledgeBaseError, KnowledgeBaseMissingError


def _conversation_for(selection: str) -> list[ChatEntry]:
    """The chosen base's conversation; ``st.session_state.messages`` is the same list, so appending to it keeps it."""
    messages = st.session_state.conversations.setdefault(selection, [])
    st.session_state.messages = messages
    return messages


def _ensure_loaded(settings: Settings, lang: str, slot: DeltaGenerator) -> str:
    """Load models and index once per process, saying what is loading in ``slot``; returns an error message or ""."""
    try:
        if is_loaded(settings):
            pipeline = load_pipeline(settings)
        else:
            with slot.status(t("loading", lang, what=t("loading_what", lang)), expanded=False):
                pipeline = load_pipeline(settings)
            slot.empty()
    except KnowledgeBaseMissingError:
        return t("kb_missing", lang)
    except (KnowledgeBaseError, GenerationError, ConfigError, OSError, RuntimeError) as exc:
        return t("error", lang, error=escape_inline(str(exc)))
    # What opening the base repaired, in the CLI's words.
    return "\n\n".join(escape_inline(notice) for notice in kb_notices(pipeline.retriever))


def _answer(question: str, base: Settings, chosen: AskOptions, lang: str) -> ChatEntry:
    """Stream the answer to ``question`` into an assistant message; returns the entry to keep in the history."""
    with st.chat_message("assistant"):
        try:
            answer = stream_answer(load_pipeline(base).stream(question, chosen), lang)
        except KnowledgeBaseMissingError:
            message = t("kb_missing", lang)
        except KnowledgeBaseError as exc:
            message = t("error", lang, error=escape_inline(str(exc)))
        except QuestionError as exc:
            message = t("error", lang, error=escape_inline(str(exc)))
        except (GenerationError, OSError, RuntimeError, ValueError) as exc:
            message = t("error", lang, error=escape_inline(str(exc)))
        else:
            return ChatEntry("assistant", answer.text, answer=answer)
        st.error(message)
        return ChatEntry("assistant", "", error=message)


def chat() -> None:
    # One conversation per knowledge-base choice: switching bases and back finds each conversation where it was.
    st.session_state.setdefault("conversations", {})
    settings = page_settings()
    if settings is None:
        return

    # Read the question first so the labels can follow its language in this very run.
    question = st.chat_input(t("chat_placeholder", st.session_state.lang), key="question",
                             max_chars=settings.limits.max_question_chars)
    setting = st.session_state.get("ui_language", "auto")
    lang = choose_language(setting, question, st.session_state.lang)
    st.session_state.lang = lang

    try:
        base = render_base_choice(settings, t("kb_choice", lang), key="chat_base")
    except ConfigError as exc:
        st.error(escape_inline(str(exc)))
        return
    messages = _conversation_for(base.kb_name)
    render_kb_status(read_kb_status(base), base.generation.model, lang)
    chosen = render_settings(base, lang)
    if st.sidebar.button(t("new_chat", lang), key="new_chat", width="stretch"):
        st.session_state.conversations[base.kb_name] = []
        st.rerun()
    render_upload(base, lang)

    st.title(t("title", lang))
    st.caption(t("caption_base", lang, base=escape_inline(base.kb_name)))
    # One slot in every run, loading or not: a conditional element here would shift the chat history's positions
    # between runs, and Streamlit would briefly show a stale copy of the previous answer below the new history.
    slot = st.empty()
    problem = _ensure_loaded(base, lang, slot)
    if problem:
        slot.info(problem)

    for entry in messages:
        render_entry(entry, lang)
    if question:
        # The conversation so far goes with the question, so a follow-up ("那其中…") is answered in its context.
        asked = replace(chosen, history=conversation(messages))
        user = ChatEntry("user", question)
        messages.append(user)
        render_entry(user, lang)
        messages.append(_answer(question, base, asked, lang))


chat()
