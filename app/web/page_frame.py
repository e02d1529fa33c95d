"""What every page of the workspace starts with: the interface language and the settings (of the configuration, or
of the chosen knowledge base), or one clear line saying why there are none."""

from __future__ import annotations

import streamlit as st

from app.config import ConfigError, Settings, load_settings
from app.web.chosen_base import render_base_choice
from app.web.ui_render import escape_inline
from app.web.ui_text import choose_language, t


def page_language() -> str:
    """The interface language: the sidebar's setting, else the language of the latest question."""
    return choose_language(st.session_state.get("ui_language", "auto"), None, st.session_state.get("lang", "zh"))


def page_settings() -> Settings | None:
    """The settings of the configuration (not of a base); None after showing why they cannot be loaded."""
    try:
        return load_settings()
    except ConfigError as exc:
        st.error(escape_inline(str(exc)))
        return None


def one_base_page(title_key: str, choice_key: str) -> tuple[str, Settings] | None:
    """What a page about one base starts with: the interface language, the settings of the base chosen in the
    sidebar's select box (``choice_key``) and the page's title naming it; None after showing why there are none."""
    lang = page_language()
    settings = page_settings()
    if settings is None:
        return None
    try:
        base = render_base_choice(settings, t("kb_choice", lang), key=choice_key)
    except ConfigError as exc:  # the chosen base was damaged since it was listed
        st.error(escape_inline(str(exc)))
        return None
    st.title(f"{t(title_key, lang)} · {base.kb_name}")
    return lang, base
