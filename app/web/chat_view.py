"""The chat page, the workspace's default page: questions about the documents of the chosen knowledge base, or of
several at once (retrieval fused across them, each source naming its base); answers stream in with their sources,
and the sidebar shows the bases, the retrieval and generation settings, and an upload box (into the first chosen
base) feeding the same incremental ingest as ``python -m ingest``. Each choice of bases keeps its own
conversation. Document text is rendered literally (app/web/ui_render.py): nothing from a document can run or load
in the browser.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app.answer.answer_pipeline import AskOptions, QuestionError
from app.answer.base_selection import SELECTION_JOIN
from app.config import ConfigError, Settings
from app.generation.base import GenerationError
from app.web.chosen_base import render_bases_choice, settings_of
from app.web.components import is_loaded, load_selection, read_kb_status
from app.web.page_frame import page_settings
from app.web.ui_answer import ChatEntry, conversation, render_entry, stream_answer
from app.web.ui_render import escape_inline
from app.web.ui_sidebar import render_kb_status, render_settings, render_upload
from app.web.ui_text import choose_language, t
from app.wiring import kb_notices
from ingest.store.knowledge_base import KnowledgeBaseError, KnowledgeBaseMissingError


def selection_key(names: list[str]) -> str:
    """The conversation of a choice of bases, whatever the order they were picked in."""
    return SELECTION_JOIN.join(sorted(names, key=str.casefold))


def _conversation_for(selection: str) -> list[ChatEntry]:
    """The conversation of a choice of bases; ``st.session_state.messages`` is the same list, so appending to it
    keeps it."""
    messages = st.session_state.conversations.setdefault(selection, [])
    st.session_state.messages = messages
    return messages


def _ensure_loaded(settings: Settings, names: list[str], lang: str, slot: DeltaGenerator) -> str:
    """Load models and indexes once per process, saying what is loading in ``slot``; returns an error message or
    "" (or what opening the bases repaired or left out)."""
    try:
        if is_loaded(settings, names):
            pipeline = load_selection(settings, names)
        else:
            with slot.status(t("loading", lang, what=t("loading_what", lang)), expanded=False):
                pipeline = load_selection(settings, names)
            slot.empty()
    except KnowledgeBaseMissingError:
        return t("kb_missing", lang)
    except (KnowledgeBaseError, GenerationError, ConfigError, OSError, RuntimeError) as exc:
        return t("error", lang, error=escape_inline(str(exc)))
    # What opening the base repaired, in the CLI's words.
    return "\n\n".join(escape_inline(notice) for notice in kb_notices(pipeline.retriever))


def _answer(question: str, base: Settings, names: list[str], chosen: AskOptions, lang: str) -> ChatEntry:
    """Stream the answer to ``question`` into an assistant message; returns the entry to keep in the history."""
    with st.chat_message("assistant"):
        try:
            answer = stream_answer(load_selection(base, names).stream(question, chosen), lang)
        except KnowledgeBaseMissingError:
            message = t("kb_missing", lang)
        except KnowledgeBaseError as exc:
            message = t("error", lang, error=escape_inline(str(exc)))
        except (QuestionError, ConfigError) as exc:
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

    names = render_bases_choice(settings, t("kb_choice_several", lang), key="chat_bases")
    if not names:
        st.title(t("title", lang))
        st.info(t("choose_a_base", lang))
        return
    try:
        base = settings_of(settings, names[0])
    except ConfigError as exc:
        st.error(escape_inline(str(exc)))
        return
    messages = _conversation_for(selection_key(names))
    for name in names:
        try:
            shown = settings_of(settings, name)
        except ConfigError as exc:
            st.sidebar.error(escape_inline(str(exc)))
            continue
        render_kb_status(read_kb_status(shown), base.generation.model, lang, name if len(names) > 1 else "")
    chosen = render_settings(base, lang)
    if st.sidebar.button(t("new_chat", lang), key="new_chat", width="stretch"):
        st.session_state.conversations[selection_key(names)] = []
        st.rerun()
    render_upload(base, lang)
    if len(names) > 1:
        st.sidebar.caption(t("upload_into", lang, base=escape_inline(base.kb_name)))

    st.title(t("title", lang))
    st.caption(t("caption_base", lang, bases=t("list_sep", lang).join(t("quoted", lang, name=escape_inline(n))
                                                                        for n in names)))
    # One slot in every run, loading or not: a conditional element here would shift the chat history's positions
    # between runs, and Streamlit would briefly show a stale copy of the previous answer below the new history.
    slot = st.empty()
    problem = _ensure_loaded(base, names, lang, slot)
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
        messages.append(_answer(question, base, names, asked, lang))


chat()
