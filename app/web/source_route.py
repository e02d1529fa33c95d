"""Where the source page lives: its file, its URL path, and the link a citation opens."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import streamlit as st
from streamlit.navigation.page import StreamlitPage

SOURCE_PAGE_FILE = Path(__file__).resolve().parent / "source_page.py"
SOURCE_URL_PATH = "source"


def source_page(title: str = "docqa") -> StreamlitPage:
    """The source page as an entry of the app's ``st.navigation`` (not listed: it is opened from a citation)."""
    return st.Page(SOURCE_PAGE_FILE, url_path=SOURCE_URL_PATH, title=title, visibility="hidden")


def source_url(link: dict[str, str], lang: str) -> str:
    """The source page's address for a citation's ``link`` query, relative to the app's root (so it follows
    ``server.baseUrlPath``); it opens in a new tab and needs nothing of the chat's session."""
    return f"{SOURCE_URL_PATH}?{urlencode({**link, 'lang': lang})}"
