"""Knowledge bases for the benchmarks, built by the real ingest through the composition root."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings
from bench.lib.eval_data import materialise_corpus
from bench.lib.paths import RESULTS_DIR


def build_kb(settings: Settings, corpus_path: Path, name: str):
    """Ingest ``corpus_path`` with the real pipeline into bench/results/kb-<name> (incremental, cached) and
    return (retriever, embedder, corpus)."""
    from app.wiring import build_retriever, load_embedder, run_ingest
    from ingest.pipeline.ingest_pipeline import IngestOptions

    work_dir = RESULTS_DIR / f"kb-{name}"
    work_dir.mkdir(parents=True, exist_ok=True)
    settings.kb_dir = work_dir / "kb"
    corpus = materialise_corpus(corpus_path, work_dir)
    embedder = load_embedder(settings)
    run_ingest(settings, [corpus.folder], IngestOptions(), embedder_factory=lambda: embedder)
    retriever = build_retriever(settings, embedder)
    return retriever, embedder, corpus
