"""The retrieval-testing page: a question in, the passages the chosen base gives for it out, with every stage's
score (dense, BM25, fused, rerank) — the same numbers as ``python -m retrieval --json`` — and whether the evidence
gate would let the question through to the LLM. The controls (passages, fusion weights, rerank, evidence threshold)
change this one search only, never the configuration or the chat.

The search runs on the chat's own retriever (the models and the live generation the page already holds), copied
with this search's fusion weights."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.config import ConfigError, Settings
from app.generation.base import GenerationError
from app.web.components import is_loaded, load_pipeline
from app.web.page_frame import one_base_page
from app.web.ui_render import escape_inline
from app.web.ui_text import t
from ingest.store.knowledge_base import KnowledgeBaseError, KnowledgeBaseMissingError
from prompts.evidence_gate import check_evidence, evidence_score
from retrieval.hybrid_retriever import HybridRetriever
from retrieval.question_check import QuestionError
from retrieval.results import RetrievalResult, ScoredChunk

PASSAGES_RANGE = (1, 50)
WEIGHT_RANGE = (0.0, 10.0)
EVIDENCE_RANGE = (-1.0, 1.0)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _fmt(value: float | None, rank: int | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" + (f" (#{rank})" if rank else "")


def with_weights(retriever: HybridRetriever, dense: float, bm25: float) -> HybridRetriever:
    """The same retriever (base snapshot, models, reranker) fusing with these weights."""
    settings = retriever.settings.replace(fusion_dense_weight=dense, fusion_bm25_weight=bm25)
    return HybridRetriever(retriever.kb, retriever.embedder, settings, retriever.reranker, retriever.limits,
                           base=retriever.base)


def _controls(base: Settings, lang: str) -> tuple[int, float, float, bool, float]:
    r, a = base.retrieval, base.answer
    col1, col2, col3, col4, col5 = st.columns(5)
    passages = col1.number_input(t("top_k", lang), *PASSAGES_RANGE, int(_clamp(r.top_k, PASSAGES_RANGE)),
                                 key="rt_passages")
    dense = col2.number_input(t("dense_weight", lang), *WEIGHT_RANGE,
                              float(_clamp(r.fusion_dense_weight, WEIGHT_RANGE)), step=0.1, key="rt_dense_weight")
    bm25 = col3.number_input(t("bm25_weight", lang), *WEIGHT_RANGE,
                             float(_clamp(r.fusion_bm25_weight, WEIGHT_RANGE)), step=0.1, key="rt_bm25_weight")
    rerank = col4.toggle(t("rerank", lang), r.rerank, key="rt_rerank")
    threshold = col5.number_input(t("min_evidence", lang), *EVIDENCE_RANGE,
                                  float(_clamp(a.min_evidence_score, EVIDENCE_RANGE)), step=0.01, format="%.2f",
                                  key="rt_min_evidence")
    return int(passages), float(dense), float(bm25), bool(rerank), float(threshold)


def _search(base: Settings, query: str, passages: int, dense: float, bm25: float, rerank: bool) -> RetrievalResult:
    retriever = load_pipeline(base).retriever
    return with_weights(retriever, dense, bm25).retrieve(query, top_k=passages, rerank=rerank)


def _show(result: RetrievalResult, threshold: float, field: str, lang: str) -> None:
    gate = check_evidence(result.passages, threshold, field)
    if gate.answerable:
        st.success(t("gate_pass", lang, best=f"{gate.best_score:.4f}", field=field, threshold=f"{threshold:.2f}"))
    else:
        st.warning(t("gate_refuse", lang, reason=escape_inline(gate.reason)))
    st.dataframe([_row(rank, p, threshold, field, lang) for rank, p in enumerate(result.passages, start=1)],
                 hide_index=True, width="stretch")
    for rank, p in enumerate(result.passages, start=1):
        chunk = p.chunk
        where = " · ".join(part for part in (chunk.page_label, chunk.heading) if part)
        with st.expander(f"[{rank}] {Path(chunk.source).name}" + (f" · {where}" if where else "")):
            st.text(p.text)  # literal: nothing in a document is read as markup
    st.caption(t("timings", lang) + ": " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in result.timings.items()))


def _row(rank: int, p: ScoredChunk, threshold: float, field: str, lang: str) -> dict[str, object]:
    evidence = evidence_score(p, field)
    return {
        t("rank", lang): rank,
        t("col_name", lang): Path(p.chunk.source).name,
        t("col_where", lang): p.chunk.page_label or "—",
        t("score_dense", lang): _fmt(p.dense_score, p.dense_rank),
        t("score_bm25", lang): _fmt(p.bm25_score, p.bm25_rank),
        t("score_fused", lang): _fmt(p.fused_score),
        t("score_rerank", lang): _fmt(p.rerank_score),
        t("col_evidence", lang): "✓" if evidence is not None and evidence >= threshold else "",
        "chunk": p.chunk.chunk_id,
    }


def retrieval_page() -> None:
    opened = one_base_page("nav_retrieval", "retrieval_base")
    if opened is None:
        return
    lang, base = opened
    st.caption(t("retrieval_caption", lang))
    with st.form("retrieval_test"):
        query = st.text_input(t("question", lang), max_chars=base.limits.max_question_chars, key="rt_query")
        passages, dense, bm25, rerank, threshold = _controls(base, lang)
        submitted = st.form_submit_button(t("search", lang), type="primary")
    if not (submitted and query.strip()):
        return
    try:
        waiting = t("retrieving", lang) if is_loaded(base) else t("loading", lang, what=t("loading_what", lang))
        with st.spinner(waiting):
            result = _search(base, query, passages, dense, bm25, rerank)
    except KnowledgeBaseMissingError:
        st.info(t("kb_missing", lang))
    except (QuestionError, ConfigError, KnowledgeBaseError, GenerationError, OSError, RuntimeError, ValueError) as exc:
        st.error(t("error", lang, error=escape_inline(str(exc))))
    else:
        _show(result, threshold, base.answer.evidence_score_field, lang)


retrieval_page()
