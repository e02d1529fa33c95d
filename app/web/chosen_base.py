"""Which knowledge base the page works on, kept in the session across its pages: the chat asks it, the documents
and retrieval-testing pages show it, the knowledge-bases page switches it.

The choice lives under its own session key, not a widget's: Streamlit forgets a widget's value on a run of a page
that does not draw it, and the choice must survive a visit to another page."""

from __future__ import annotations

import streamlit as st

from app.config import Settings, base_registry, settings_for_base
from ingest.store.base_registry import DEFAULT_BASE, BaseRegistryError

CHOSEN = "chosen_base"


def base_names(settings: Settings) -> list[str]:
    """The bases a page can switch to (the default first; damaged ones are left out: they cannot be opened)."""
    try:
        return [b.name for b in base_registry(settings).list() if not b.problem]
    except BaseRegistryError:
        return [DEFAULT_BASE]


def chosen_name(settings: Settings) -> str:
    """The chosen base's name: the session's choice while that base exists, else the configured one."""
    names = base_names(settings)
    chosen = st.session_state.get(CHOSEN)
    if chosen in names:
        return chosen
    return settings.kb_name if settings.kb_name in names else names[0]


def choose(name: str) -> None:
    st.session_state[CHOSEN] = name


def chosen_settings(settings: Settings) -> Settings:
    """The settings of the chosen base (its folder, uploads, chunking and OCR); ConfigError when it cannot be
    opened (its base.json was damaged since it was listed)."""
    name = chosen_name(settings)
    return settings if name == settings.kb_name else settings_for_base(settings, name)


def render_base_choice(settings: Settings, label: str, key: str) -> Settings:
    """A sidebar select box of the bases, starting at the chosen one; returns the chosen base's settings."""
    names = base_names(settings)
    current = chosen_name(settings)

    def remember() -> None:
        choose(st.session_state[key])

    st.session_state[key] = current  # the widget follows a switch made on another page
    st.sidebar.selectbox(label, names, key=key, on_change=remember)
    return chosen_settings(settings)

