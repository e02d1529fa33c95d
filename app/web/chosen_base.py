"""Which knowledge bases the page works on, kept in the session across its pages: the chat asks one or several at
once; the documents and retrieval-testing pages show the first of them; the knowledge-bases page switches to one.

The choice lives under its own session key, not a widget's: Streamlit forgets a widget's value on a run of a page
that does not draw it, and the choice must survive a visit to another page."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from app.config import Settings, base_registry, settings_for_base
from ingest.store.base_registry import DEFAULT_BASE, BaseRegistryError

CHOSEN = "chosen_bases"


def base_names(settings: Settings) -> list[str]:
    """The bases a page can switch to (the default first; damaged ones are left out: they cannot be opened)."""
    try:
        return [b.name for b in base_registry(settings).list() if not b.problem]
    except BaseRegistryError:
        return [DEFAULT_BASE]


def chosen_names(settings: Settings) -> list[str]:
    """The chosen bases that still exist, in the order chosen; the configured base when none does."""
    names = base_names(settings)
    chosen = [n for n in st.session_state.get(CHOSEN, []) if n in names]
    if chosen:
        return chosen
    return [settings.kb_name if settings.kb_name in names else names[0]]


def chosen_name(settings: Settings) -> str:
    """The base a one-base page shows: the first chosen."""
    return chosen_names(settings)[0]


def choose(names: Sequence[str]) -> None:
    """Work on ``names`` from now on (the first one on the one-base pages)."""
    st.session_state[CHOSEN] = list(dict.fromkeys(names))


def focus(settings: Settings, name: str) -> None:
    """A one-base page picked ``name``: it comes first, and stays with the others if it was chosen with them."""
    current = chosen_names(settings)
    choose([name, *current] if name in current else [name])


def settings_of(settings: Settings, name: str) -> Settings:
    """The settings of base ``name`` (its folder, uploads, chunking and OCR); ConfigError when it cannot be opened
    (its base.json was damaged since it was listed)."""
    return settings if name == settings.kb_name else settings_for_base(settings, name)


def chosen_settings(settings: Settings) -> Settings:
    """The settings of the base a one-base page shows."""
    return settings_of(settings, chosen_name(settings))


def render_base_choice(settings: Settings, label: str, key: str) -> Settings:
    """A sidebar select box of the bases, starting at the chosen one; returns the chosen base's settings."""
    names = base_names(settings)

    def remember() -> None:
        focus(settings, st.session_state[key])

    st.session_state[key] = chosen_name(settings)  # the widget follows a switch made on another page
    st.sidebar.selectbox(label, names, key=key, on_change=remember)
    return chosen_settings(settings)


def render_bases_choice(settings: Settings, label: str, key: str) -> list[str]:
    """A sidebar multiselect of the bases, starting at the chosen ones; returns the chosen names (possibly none
    while the user is changing the selection)."""
    names = base_names(settings)

    def remember() -> None:
        if st.session_state[key]:
            choose(st.session_state[key])

    st.session_state[key] = chosen_names(settings) if st.session_state.get(key) != [] else []
    return list(st.sidebar.multiselect(label, names, key=key, on_change=remember))
