"""The knowledge-bases page: every base under the data folder (documents, chunks, size, last update, and the
problem of a damaged one), and creating, renaming, deleting (typed confirmation), switching, and a base's own
settings (chunk size and overlap, OCR). Everything goes through the base registry (ingest/store/base_registry.py),
which checks the names: the page only shows its one-line messages."""

from __future__ import annotations

import datetime as _dt

import streamlit as st

from app.answer.knowledge_bases import BaseOverview, list_bases
from app.config import ConfigError, Settings, base_registry, settings_for_base
from app.web.chosen_base import CHOSEN, choose, chosen_name, chosen_names
from app.web.page_frame import page_language, page_settings
from app.web.ui_render import escape_inline
from app.web.ui_text import t
from app.wiring import knowledge_store
from ingest.settings import ChunkingSettings
from ingest.store.base_registry import DEFAULT_BASE, MAX_NAME_CHARS, BaseRegistryError
from ingest.store.knowledge_base import KnowledgeBaseError

# Session key of the last action's outcome, shown after the rerun that follows it.
MESSAGE = "bases_message"
# The OCR engine a base that turns OCR on uses (the configured engine when it is not "off").
OCR_ON = "auto"
OCR_OFF = "off"
# A name field accepts more than a valid name, so a too-long name gets the registry's message, not a silent cut.
NAME_INPUT_CHARS = 16 * MAX_NAME_CHARS


def _say(kind: str, text: str) -> None:
    st.session_state[MESSAGE] = (kind, text)


def _show_message() -> None:
    kind, text = st.session_state.pop(MESSAGE, (None, ""))
    if kind == "success":
        st.success(text)
    elif kind == "error":
        st.error(text)


def _size_and_updated(settings: Settings, name: str) -> tuple[int, float]:
    """The bytes of a base's documents and when its live generation was committed (0s when nothing was)."""
    store = knowledge_store(settings if name == settings.kb_name else settings_for_base(settings, name))
    info = store.live_info()
    if info is None:
        return 0, 0.0
    _, documents = store.live_documents()
    return sum(d.size for d in documents), info.updated_at


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _when(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "—"


def _rows(settings: Settings, overviews: list[BaseOverview], chosen: list[str],
          lang: str) -> list[dict[str, object]]:
    rows = []
    for base in overviews:
        size, updated, problem = 0, 0.0, base.problem
        if not problem:
            try:
                size, updated = _size_and_updated(settings, base.name)
            except (ConfigError, KnowledgeBaseError, OSError) as exc:
                problem = str(exc)
        rows.append({
            t("col_chosen", lang): "●" if base.name in chosen else "",
            t("col_name", lang): base.name,
            t("kb_documents", lang): base.documents,
            t("kb_chunks", lang): base.chunks,
            t("col_size", lang): _megabytes(size) if base.generation else "—",
            t("kb_updated", lang): _when(updated),
            t("col_problem", lang): problem,
        })
    return rows


def _create(settings: Settings, lang: str) -> None:
    with st.form("create_base", clear_on_submit=False):
        st.subheader(t("create_base", lang))
        name = st.text_input(t("base_name", lang), max_chars=NAME_INPUT_CHARS, key="new_base_name")
        chunk_size, chunk_overlap, ocr = _settings_inputs(settings.chunking, settings.ocr.engine != OCR_OFF, "new",
                                                          lang)
        if st.form_submit_button(t("create", lang), type="primary"):
            try:
                created = base_registry(settings).create(name, _base_settings(chunk_size, chunk_overlap, ocr))
            except BaseRegistryError as exc:
                _say("error", escape_inline(str(exc)))
            else:
                choose([created.name])
                _say("success", t("base_created", lang, name=escape_inline(created.name)))
            st.rerun()


def _settings_inputs(chunking: ChunkingSettings, ocr_on: bool, prefix: str, lang: str) -> tuple[int, int, bool]:
    col1, col2, col3 = st.columns(3)
    size = col1.number_input(t("chunk_size", lang), 50, 10_000, int(chunking.chunk_size), step=50,
                             key=f"{prefix}_chunk_size")
    overlap = col2.number_input(t("chunk_overlap", lang), 0, 5_000, int(chunking.chunk_overlap), step=10,
                                key=f"{prefix}_chunk_overlap")
    ocr = col3.toggle(t("ocr", lang), ocr_on, key=f"{prefix}_ocr")
    return int(size), int(overlap), bool(ocr)


def _base_settings(chunk_size: int, chunk_overlap: int, ocr: bool) -> dict[str, dict[str, object]]:
    """A base's own settings as base.json keeps them; BaseRegistryError when the chunking does not make sense."""
    if chunk_overlap >= chunk_size:
        raise BaseRegistryError(f"the chunk overlap ({chunk_overlap}) must be smaller than the chunk size "
                                f"({chunk_size})")
    return {"chunking": {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap},
            "ocr": {"engine": OCR_ON if ocr else OCR_OFF}}


def _manage(settings: Settings, names: list[str], lang: str) -> None:
    """Switch to, rename, re-configure or delete one base."""
    st.subheader(t("manage_base", lang))
    current = chosen_name(settings)
    name = st.selectbox(t("base", lang), names, index=names.index(current) if current in names else 0,
                        key="manage_base")
    if st.button(t("switch_to", lang, name=escape_inline(name)), key="switch_base", disabled=name == current):
        choose([name])
        _say("success", t("base_switched", lang, name=escape_inline(name)))
        st.rerun()
    if name == DEFAULT_BASE:
        st.caption(t("default_base_note", lang))
        return
    registry = base_registry(settings)
    with st.expander(t("rename", lang)):
        new_name = st.text_input(t("new_name", lang), max_chars=NAME_INPUT_CHARS, key="rename_to")
        if st.button(t("rename", lang), key="rename_base"):
            try:
                renamed = registry.rename(name, new_name)
            except BaseRegistryError as exc:
                _say("error", escape_inline(str(exc)))
            else:
                _renamed(name, renamed.name)
                _say("success", t("base_renamed", lang, old=escape_inline(name), name=escape_inline(renamed.name)))
            st.rerun()
    with st.expander(t("base_settings", lang)):
        st.caption(t("base_settings_note", lang))
        try:
            own = settings_for_base(settings, name)
        except ConfigError as exc:
            st.error(escape_inline(str(exc)))
        else:
            size, overlap, ocr = _settings_inputs(own.chunking, own.ocr.engine != OCR_OFF, f"edit_{name}", lang)
            if st.button(t("save", lang), key="save_base_settings"):
                try:
                    registry.update_settings(name, _base_settings(size, overlap, ocr))
                except BaseRegistryError as exc:
                    _say("error", escape_inline(str(exc)))
                else:
                    _say("success", t("base_saved", lang, name=escape_inline(name)))
                st.rerun()
    with st.expander(t("delete_base", lang)):
        st.warning(t("delete_base_warning", lang, name=escape_inline(name)))
        typed = st.text_input(t("type_to_confirm", lang, name=escape_inline(name)), key="delete_confirm")
        if st.button(t("delete", lang), key="delete_base", type="primary", disabled=typed.strip() != name):
            try:
                registry.delete(name)
            except BaseRegistryError as exc:
                _say("error", escape_inline(str(exc)))
            else:
                st.session_state.get("conversations", {}).pop(name, None)
                _say("success", t("base_deleted", lang, name=escape_inline(name)))
            st.rerun()


def _renamed(old: str, new: str) -> None:
    """A renamed base keeps its conversation and stays chosen if it was."""
    conversations = st.session_state.get("conversations", {})
    if old in conversations:
        conversations[new] = conversations.pop(old)
    chosen = st.session_state.get(CHOSEN, [])
    if old in chosen:
        choose([new if n == old else n for n in chosen])


def bases_page() -> None:
    lang = page_language()
    settings = page_settings()
    if settings is None:
        return
    st.title(t("nav_bases", lang))
    _show_message()
    try:
        overviews = list_bases(settings, knowledge_store)
    except ConfigError as exc:
        st.error(escape_inline(str(exc)))
        return
    st.dataframe(_rows(settings, overviews, chosen_names(settings), lang), hide_index=True, width="stretch")
    _manage(settings, [b.name for b in overviews if not b.problem], lang)
    _create(settings, lang)


bases_page()
