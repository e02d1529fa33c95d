"""The source page: a citation opened at its place in the original (``source?chunk=ID&doc=HASH&quote=…``).

Opened in a new tab from an answer's sources; everything it needs is in its address (the base, the chunk id, the
cited document's hash prefix, the cited sentence), so it loads no model and keeps nothing of the chat's session.
A PDF page or a scanned image comes as a PNG drawn on the server with the cited lines highlighted
(app/sources/); a slide, a sheet's row or a text passage goes through the page's literal rendering
(app/web/ui_render.py). Nothing from a document becomes markup.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from app.config import ConfigError, Settings, load_settings, settings_for_base
from app.sources.cited_chunk import CitationGone, cited_chunk
from app.sources.cited_place import CitedPlace, cited_place
from app.web.ui_render import block_html, escape_inline, source_title
from app.web.ui_text import LANGUAGES, t
from app.wiring import knowledge_store, quiet_model_libraries
from ingest.records import Chunk
from ingest.store.knowledge_base import KnowledgeBaseError
from retrieval.results import ScoredChunk


def _settings(base: str) -> Settings:
    settings = load_settings()
    return settings_for_base(settings, base) if base else settings


def _title(chunk: Chunk, place: CitedPlace, lang: str) -> str:
    page_label = t("source_of_pages", lang, page="{page}", count=place.page_count) if place.page_count \
        else t("page", lang)
    slide_label = t("slide", lang) if not place.page_count else page_label
    shown = replace(chunk, page=place.page if place.page is not None else chunk.page)
    return source_title(ScoredChunk(shown), page_label, None, slide_label)


def _show(chunk: Chunk, place: CitedPlace, lang: str) -> None:
    st.html(_title(chunk, place, lang))
    if place.notice:
        st.warning(escape_inline(place.notice))
    if place.kind == "page":
        st.image(place.png, caption=t("source_marked", lang) if place.located else None)
    elif place.kind == "row":
        if place.rows:
            st.caption(t("source_row", lang))
            # A data grid draws cell values as text on a canvas: nothing in a cell is interpreted.
            st.dataframe(pd.DataFrame(place.rows), hide_index=True)
        with st.expander(t("source_context", lang), expanded=not place.rows):
            st.html(block_html(place.text, place.span))
    else:
        st.html(block_html(place.text, place.span))


def main() -> None:
    quiet_model_libraries()
    st.set_page_config(page_title="docqa", page_icon="📄", layout="wide")
    params = st.query_params
    lang = params.get("lang", "zh") if params.get("lang") in LANGUAGES else "zh"
    st.title(t("source_heading", lang))
    try:
        chunk_id = int(params.get("chunk", ""))
    except ValueError:
        st.info(t("source_bad_link", lang))
        return
    try:
        settings = _settings(params.get("base", ""))
        chunk = cited_chunk(knowledge_store(settings), chunk_id, params.get("doc", ""))
    except (ConfigError, KnowledgeBaseError, CitationGone, OSError) as exc:
        st.error(escape_inline(str(exc)))
        return
    with st.spinner():
        place = cited_place(chunk, params.get("quote", ""), settings.ocr, settings.limits)
    _show(chunk, place, lang)


main()
