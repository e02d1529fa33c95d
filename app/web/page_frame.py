"""What every page of the workspace starts with: the interface language and the chosen knowledge base's settings,
or one clear line saying why there are none."""

from __future__ import annotations

import streamlit as st

from app.config import ConfigError, Settings, load_settings
from app.web.chosen_base import chosen_settings
from app.web.ui_render import escape_inline
from app.web.ui_text import choose_language


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


def chosen_base_settings(settings: Settings) -> Settings | None:
    """The chosen base's settings; None after showing why the base cannot be opened."""
    try:
        return chosen_settings(settings)
    except ConfigError as exc:
        st.error(escape_inline(str(exc)))
        return None
