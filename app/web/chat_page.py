"""The web page: ``streamlit run app/web/chat_page.py``.

This script is the page's entry: it sets up what every page of the workspace shares (the title, the interface
language) and the navigation between them: the chat (app/web/chat_view.py, the default page), the knowledge bases,
their documents, retrieval testing, and (not listed) the cited place on the original a citation opens
(app/web/source_page.py). Each page is its own script, run by the navigation.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.web.page_frame import page_language
from app.web.source_route import source_page
from app.web.ui_sidebar import render_language_choice
from app.web.ui_text import t
from app.wiring import quiet_model_libraries

# The pages' scripts, by absolute path: the navigation then works whichever script started it (tests run this one
# from a wrapper elsewhere).
PAGES_DIR = Path(__file__).resolve().parent


def main() -> None:
    quiet_model_libraries()
    st.set_page_config(page_title="docqa", page_icon="📄", layout="wide")
    st.session_state.setdefault("lang", "zh")
    # Drawn on every page (a widget not drawn in a run loses its value), before the page's own sidebar.
    render_language_choice(page_language())
    lang = page_language()
    pages = [
        st.Page(PAGES_DIR / "chat_view.py", title=t("nav_chat", lang), icon=":material/chat:", url_path="chat",
                default=True),
        st.Page(PAGES_DIR / "bases_page.py", title=t("nav_bases", lang), icon=":material/folder_open:",
                url_path="bases"),
        st.Page(PAGES_DIR / "documents_page.py", title=t("nav_documents", lang), icon=":material/description:",
                url_path="documents"),
        st.Page(PAGES_DIR / "retrieval_page.py", title=t("nav_retrieval", lang), icon=":material/manage_search:",
                url_path="retrieval"),
        # The cited place on the original, opened in a new tab from an answer's sources: not listed.
        source_page(),
    ]
    st.navigation(pages).run()


main()
