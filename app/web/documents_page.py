"""The documents page: the chosen base's documents in a table (name, type, pages, chunks, size, when ingested, and
whether the original is still as it was), upload into it, delete one or several (after a confirmation), re-index
one, download an original, and a document's chunks (text, page, heading path) to see how it was split.

Reading goes through each base's store (app/answer/knowledge_bases.py: no model loads to list); delete, re-index and
download are the shared document service's (app/answer/documents.py), the same the HTTP API uses."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable

import streamlit as st

from app.answer.documents import delete_documents, original_file, reindex_document
from app.answer.knowledge_bases import DocumentOverview, UnknownDocumentError, document_chunks, list_documents
from app.config import Settings
from app.web.page_frame import one_base_page
from app.web.ui_render import escape_inline
from app.web.ui_sidebar import render_upload
from app.web.ui_text import t
from app.wiring import knowledge_store, load_embedder
from ingest.records import Chunk, DocumentRecord
from ingest.store.kb_lock import KnowledgeBaseLockedError
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.store.store_protocol import KnowledgeStore

# Session key of the last action's outcome, shown after the rerun that follows it.
MESSAGE = "documents_message"
# Characters of a chunk's text shown in the chunk table (the whole text is in the row's detail below it).
PREVIEW_CHARS = 120


def _say(kind: str, text: str) -> None:
    st.session_state[MESSAGE] = (kind, text)


def _show_message() -> None:
    kind, text = st.session_state.pop(MESSAGE, (None, ""))
    if kind:
        getattr(st, kind)(text)


def _when(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "—"


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def original_status(path: str, size: int, mtime: float, lang: str) -> str:
    """Whether the file a document was read from is still there as it was ingested (a cheap stat, no hashing)."""
    try:
        info = os.stat(path)
    except OSError:
        return t("status_missing", lang)
    if info.st_size != size or abs(info.st_mtime - mtime) > 1e-3:
        return t("status_changed", lang)
    return t("status_ok", lang)


def page_count(chunks: list[Chunk]) -> int | None:
    """How many pages (or slides) a document's chunks cover; None for a file without pages (text, sheets)."""
    pages = {c.page for c in chunks if c.page is not None}
    return len(pages) or None


@st.cache_data(show_spinner=False, max_entries=16)
def _pages(location: str, generation: str, _store: KnowledgeStore,
           _records: list[DocumentRecord]) -> dict[str, int | None]:
    """Each document's pages by path, read from its chunks with one opening of the generation, once per generation
    (a generation never changes). As ``document_chunks`` reads a document: every ordinal of a document lies within
    its n_chunks of its first chunk."""
    try:
        snapshot = _store.open()
    except KnowledgeBaseError:
        return {}
    try:
        return {r.path: page_count(snapshot.neighbours(
            Chunk(chunk_id=-1, doc_id=r.content_hash, source=r.path, text="", ordinal=0), window=max(r.n_chunks, 1)))
            for r in _records}
    finally:
        snapshot.close()


def _table(store: KnowledgeStore, generation: str, documents: list[DocumentOverview],
           records: list[DocumentRecord], lang: str) -> list[dict[str, object]]:
    by_path = {r.path: r for r in records}
    pages = _pages(store.location, generation, store, records)
    rows = []
    for doc in documents:
        size, mtime = by_path[doc.path].size, by_path[doc.path].mtime
        rows.append({
            t("col_name", lang): doc.name,
            t("col_type", lang): doc.file_type,
            # Text throughout: a column mixing numbers and "—" cannot be one Arrow column.
            t("col_pages", lang): str(pages.get(doc.path) or "—"),
            t("kb_chunks", lang): doc.chunks,
            t("col_size", lang): _size(size),
            t("col_ingested", lang): _when(doc.updated_at),
            t("col_status", lang): original_status(doc.path, size, mtime, lang),
        })
    return rows


def _chunk_view(store: KnowledgeStore, doc: DocumentOverview, lang: str) -> None:
    try:
        _, chunks = document_chunks(store, doc.id)
    except (UnknownDocumentError, KnowledgeBaseError) as exc:
        st.error(escape_inline(str(exc)))
        return
    st.caption(t("chunks_of", lang, n=len(chunks), name=escape_inline(doc.name)))
    st.dataframe([{
        "#": c.ordinal + 1,
        t("col_where", lang): c.page_label or "—",
        t("col_heading", lang): c.heading,
        t("col_chars", lang): len(c.text),
        t("col_text", lang): c.text[:PREVIEW_CHARS] + ("…" if len(c.text) > PREVIEW_CHARS else ""),
    } for c in chunks], hide_index=True, width="stretch")
    for c in chunks:
        where = " · ".join(part for part in (c.page_label, c.heading) if part)
        with st.expander(f"#{c.ordinal + 1}" + (f" · {where}" if where else "")):
            st.text(c.text)  # literal: nothing in a document is read as markup


def _actions(base: Settings, documents: list[DocumentOverview], lang: str) -> None:
    by_id = {d.id: d for d in documents}
    st.subheader(t("doc_actions", lang))
    chosen = st.selectbox(t("document", lang), list(by_id), format_func=lambda i: by_id[i].name, key="doc_chosen")
    doc = by_id[chosen]
    col1, col2 = st.columns(2)
    if col1.button(t("reindex", lang), key="doc_reindex"):
        _run(lambda: reindex_document(base, doc.id, lambda: load_embedder(base)),
             t("reindexed", lang, name=escape_inline(doc.name)), lang)
    try:
        _, original = original_file(base, doc.id)  # checked now (still there, the bytes that were ingested)
    except (OSError, LookupError, KnowledgeBaseError) as exc:
        col2.caption(escape_inline(str(exc)))
    else:
        # Read only when clicked: a large original is not sent to the browser on every rerun.
        col2.download_button(t("download", lang), original.read_bytes, file_name=doc.name, key="doc_download",
                             on_click="ignore")
    with st.expander(t("show_chunks", lang, name=escape_inline(doc.name))):
        _chunk_view(knowledge_store(base), doc, lang)
    st.subheader(t("delete_documents", lang))
    doomed = st.multiselect(t("documents_to_delete", lang), list(by_id), format_func=lambda i: by_id[i].name,
                            key="doc_delete_choice", placeholder=t("choose_documents", lang))
    confirmed = st.checkbox(t("confirm_delete", lang, n=len(doomed)), key="doc_delete_confirm", disabled=not doomed)
    if st.button(t("delete", lang), key="doc_delete", type="primary", disabled=not (doomed and confirmed)):
        names = ", ".join(escape_inline(by_id[i].name) for i in doomed)
        _run(lambda: delete_documents(base, doomed), t("deleted", lang, names=names), lang)


def _run(action: Callable[[], object], done: str, lang: str) -> None:
    """Run a document action, keep its outcome for the rerun, and rerun (the table then shows the new generation)."""
    try:
        with st.spinner(t("working", lang)):
            action()
    except KnowledgeBaseLockedError:
        _say("warning", t("upload_busy", lang))
    except (LookupError, KnowledgeBaseError, OSError, ValueError) as exc:
        _say("error", t("error", lang, error=escape_inline(str(exc))))
    else:
        _say("success", done)
    for key in ("doc_delete_choice", "doc_delete_confirm"):
        st.session_state.pop(key, None)
    st.rerun()


def documents_page() -> None:
    opened = one_base_page("nav_documents", "documents_base")
    if opened is None:
        return
    lang, base = opened
    _show_message()
    store = knowledge_store(base)
    try:
        generation, records = store.live_documents()
        documents = list_documents(store)
    except KnowledgeBaseError as exc:
        st.error(escape_inline(str(exc)))
        return
    with st.expander(t("upload", lang), expanded=not documents):
        render_upload(base, lang, where=st.container())
    if not documents:
        st.info(t("no_documents", lang))
        return
    st.dataframe(_table(store, generation or "", documents, records, lang), hide_index=True, width="stretch")
    _actions(base, documents, lang)


documents_page()
