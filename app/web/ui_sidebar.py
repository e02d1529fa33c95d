"""The chat page's sidebar: knowledge-base status, retrieval and generation settings, new chat, upload."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app.answer.answer_pipeline import AskOptions
from app.config import Settings
from app.uploads.upload_ingest import UploadOutcome, ingest_uploads
from app.web.components import KnowledgeBaseStatus
from app.web.ui_render import escape_inline
from app.web.ui_text import AUTO, t
from ingest.loaders.document_loader import SUPPORTED_EXTENSIONS
from ingest.pipeline.progress import COMMIT, EMBED, LOAD, OCR, SAVE, IngestProgress
from ingest.store.kb_lock import KnowledgeBaseLockedError
from ingest.store.knowledge_base import KnowledgeBaseError

# Ranges the sidebar offers; the configured value is the starting point. Wider values stay possible via config.
TOP_K_RANGE = (1, 20)
EVIDENCE_RANGE = (-1.0, 1.0)
TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.05, 1.0)
SAMPLING_TOP_K_RANGE = (0, 200)
REPETITION_PENALTY_RANGE = (1.0, 2.0)
NO_REPEAT_NGRAM_RANGE = (0, 10)
MIN_NEW_TOKENS = 16
# The share of the upload bar each phase of an upload fills (embedding is the slow one), in order.
UPLOAD_PHASES = ((SAVE, 0.05), (LOAD, 0.15), (EMBED, 0.75), (COMMIT, 0.05))


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def render_language_choice(lang: str) -> str:
    options = [AUTO, "zh", "en"]
    names = {AUTO: t("language_auto", lang), "zh": "中文", "en": "English"}
    return st.sidebar.selectbox(t("language", lang), options, format_func=names.__getitem__, key="ui_language")


def render_kb_status(status: KnowledgeBaseStatus | None, llm: str, lang: str, name: str = "") -> None:
    """A base's status; ``name`` titles it when several bases are shown."""
    sidebar = st.sidebar
    sidebar.subheader(t("kb", lang) + (f" · {escape_inline(name)}" if name else ""))
    if status is None or status.info is None:
        if status is None:
            sidebar.info(t("kb_missing", lang))
        else:  # damaged: the same line the CLI prints
            sidebar.error(escape_inline(status.problem))
        sidebar.caption(f"{t('kb_llm', lang)}: {escape_inline(llm)}")
        return
    if status.notice:
        sidebar.warning(escape_inline(status.notice))
    m = status.info
    col1, col2 = sidebar.columns(2)
    col1.metric(t("kb_documents", lang), m.n_documents)
    col2.metric(t("kb_chunks", lang), m.n_chunks)
    updated = _dt.datetime.fromtimestamp(m.updated_at).strftime("%Y-%m-%d %H:%M:%S")
    rows = [("kb_embedder", m.embedder), ("kb_llm", llm), ("kb_index", f"{m.index_type} ({m.dimension}-dim)"),
            ("kb_updated", updated), ("kb_path", status.location)]
    sidebar.markdown("\n".join(f"- {t(key, lang)}: {escape_inline(value)}" for key, value in rows))
    with sidebar.expander(t("kb_files", lang)):
        for doc in sorted(status.documents, key=lambda d: d.path):
            st.markdown(f"- {escape_inline(Path(doc.path).name)} ({doc.n_chunks})")


def render_settings(base: Settings, lang: str) -> AskOptions:
    """Widgets for the per-question knobs, starting at the configured values; returns the options to ask with."""
    r, g, a = base.retrieval, base.generation, base.answer
    sidebar = st.sidebar
    with sidebar.expander(t("retrieval_settings", lang), expanded=False):
        top_k = st.number_input(t("top_k", lang), *TOP_K_RANGE, int(_clamp(r.top_k, TOP_K_RANGE)), key="set_top_k")
        rerank = st.toggle(t("rerank", lang), r.rerank, key="set_rerank")
        min_evidence = st.number_input(t("min_evidence", lang), *EVIDENCE_RANGE,
                                       float(_clamp(a.min_evidence_score, EVIDENCE_RANGE)), step=0.01,
                                       format="%.2f", key="set_min_evidence")
    with sidebar.expander(t("generation_settings", lang), expanded=False):
        temperature = st.slider(t("temperature", lang), *TEMPERATURE_RANGE,
                                float(_clamp(g.temperature, TEMPERATURE_RANGE)), step=0.05, key="set_temperature")
        top_p = st.slider(t("top_p", lang), *TOP_P_RANGE, float(_clamp(g.top_p, TOP_P_RANGE)), step=0.05,
                          key="set_top_p")
        sampling_top_k = st.number_input(t("gen_top_k", lang), *SAMPLING_TOP_K_RANGE,
                                         int(_clamp(g.sampling_top_k, SAMPLING_TOP_K_RANGE)), key="set_gen_top_k")
        repetition = st.slider(t("repetition_penalty", lang), *REPETITION_PENALTY_RANGE,
                               float(_clamp(g.repetition_penalty, REPETITION_PENALTY_RANGE)), step=0.01,
                               key="set_repetition")
        no_repeat = st.number_input(t("no_repeat_ngram", lang), *NO_REPEAT_NGRAM_RANGE,
                                    int(_clamp(g.no_repeat_ngram_size, NO_REPEAT_NGRAM_RANGE)), key="set_no_repeat")
        max_tokens = st.number_input(t("max_tokens", lang), MIN_NEW_TOKENS, g.n_ctx,
                                     int(_clamp(g.max_new_tokens, (MIN_NEW_TOKENS, g.n_ctx))), step=16,
                                     key="set_max_tokens")
    return AskOptions(
        top_k=int(top_k), rerank=bool(rerank), min_evidence_score=float(min_evidence),
        generation=g.replace(temperature=float(temperature), top_p=float(top_p), sampling_top_k=int(sampling_top_k),
                             repetition_penalty=float(repetition), no_repeat_ngram_size=int(no_repeat),
                             max_new_tokens=int(max_tokens)),
    )


def upload_fraction(event: IngestProgress) -> float:
    """How much of the upload bar ``event`` fills: the phases before it, and its own share as far as it got."""
    start = 0.0
    for phase, width in UPLOAD_PHASES:
        if phase == event.phase:
            return min(start + width * (event.done / event.total if event.total else 1.0), 1.0)
        start += width
    return start


def render_upload(settings: Settings, lang: str, where: DeltaGenerator | None = None) -> None:
    """File uploader → the same incremental ingest as ``python -m ingest`` into the base of ``settings``, with a
    progress bar; the outcome is kept in session state and shown after the page reloads with the new knowledge base.
    Drawn in the sidebar unless ``where`` says otherwise (the documents page draws it in the page)."""
    sidebar = st.sidebar if where is None else where
    sidebar.subheader(t("upload", lang))
    types = sorted(ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS)
    counter = st.session_state.setdefault("uploader_generation", 0)
    files = sidebar.file_uploader(t("upload", lang), type=types, accept_multiple_files=True,
                                  key=f"uploader_{counter}", label_visibility="collapsed")
    sidebar.caption(t("upload_help", lang, mb=f"{settings.limits.max_upload_mb:g}", types=", ".join(types)))
    if files and sidebar.button(t("upload_button", lang), key="upload_button", type="primary"):
        bar = sidebar.progress(0.0)
        names = [f.name for f in files]

        def on_progress(event: IngestProgress) -> None:
            if event.phase == OCR:  # pages of the file being loaded: the bar moves per file
                return
            fraction = upload_fraction(event)
            bar.progress(fraction, text=t("upload_progress", lang, names=escape_inline(", ".join(names)),
                                          percent=round(fraction * 100)))

        try:
            outcome = ingest_uploads([(f.name, f.getvalue()) for f in files], settings, on_progress)
        except KnowledgeBaseLockedError:
            st.session_state["upload_message"] = ("warning", t("upload_busy", lang))
        except KnowledgeBaseError as exc:
            st.session_state["upload_message"] = ("error", t("error", lang, error=escape_inline(str(exc))))
        else:
            st.session_state["upload_message"] = ("outcome", outcome)
        st.session_state["uploader_generation"] = counter + 1
        st.rerun()
    render_upload_message(lang, sidebar)


def render_upload_message(lang: str, where: DeltaGenerator | None = None) -> None:
    message = st.session_state.get("upload_message")
    if not message:
        return
    kind, payload = message
    sidebar = st.sidebar if where is None else where
    if kind == "warning":
        sidebar.warning(payload)
    elif kind == "error":
        sidebar.error(payload)
    else:
        outcome: UploadOutcome = payload
        if outcome.ingested:
            sidebar.success(t("upload_done", lang, n=len(outcome.ingested)) + " "
                            + ", ".join(escape_inline(n) for n in outcome.ingested))
        if outcome.unchanged:
            sidebar.info(t("upload_unchanged", lang, n=len(outcome.unchanged)))
        if outcome.failures:
            sidebar.error(t("upload_failed", lang) + "\n" + "\n".join(
                f"- {escape_inline(f.name)}: {escape_inline(f.reason)}" for f in outcome.failures))
