"""The composition root (app/wiring.py) opens the base the same checked way for every face: a base built with
another embedder is refused by `python -m app.cli.ask`, the chat page and the LangChain tool, and index settings from
the TOML file reach the index a question searches."""

from __future__ import annotations

import html
from pathlib import Path

import faiss
import pytest
import streamlit as st
from answer_fakes import ScriptedGenerator
from app_fakes import write_corpus
from streamlit.testing.v1 import AppTest

import app.wiring as wiring
from app.cli import ask
from app.config import load_settings
from app.langchain.langchain_tool import build_knowledge_base_tools
from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.testing.fake_embedder import FakeEmbedder

PAGE = str(Path(__file__).resolve().parent.parent / "app" / "web" / "chat_page.py")
REFUSED = "was built with embedder 'test-hash:32', not 'other-hash:32'"


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    """DOCQA_HOME holding a base built by the hash embedder; the LLM is a scripted stand-in."""
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    run_ingest(load_settings(), [write_corpus(tmp_path / "docs")], IngestOptions(),
               embedder_factory=FakeEmbedder)
    monkeypatch.setattr(wiring, "build_generator", lambda settings: ScriptedGenerator("7341 [1]"))
    return tmp_path


def _other_embedder(monkeypatch) -> None:
    monkeypatch.setattr(wiring, "load_embedder", lambda settings: FakeEmbedder(name="other-hash"))


def test_ask_refuses_a_base_built_with_another_embedder(home: Path, monkeypatch, capsys) -> None:
    _other_embedder(monkeypatch)
    assert ask.main(["星河数据库默认监听哪个端口？"]) == 2
    assert REFUSED in capsys.readouterr().err


def test_the_langchain_tool_refuses_a_base_built_with_another_embedder(home: Path, monkeypatch) -> None:
    _other_embedder(monkeypatch)
    with pytest.raises(KnowledgeBaseError, match=REFUSED):
        build_knowledge_base_tools(settings=load_settings())


def test_the_chat_page_shows_why_it_refuses_the_base(home: Path, monkeypatch) -> None:
    _other_embedder(monkeypatch)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(PAGE, default_timeout=30).run()
        assert not at.exception
        shown = [html.unescape(info.value).replace("\u2060", "") for info in at.info]  # rendered inert
        assert any(REFUSED in text for text in shown), shown
    finally:
        st.cache_resource.clear()


def test_the_same_embedder_is_accepted_everywhere(home: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(wiring, "load_embedder", lambda settings: FakeEmbedder())
    monkeypatch.setenv("DOCQA_ANSWER__MIN_EVIDENCE_SCORE", "0")
    assert ask.main(["星河数据库默认监听哪个端口？"]) == 0
    assert "7341" in capsys.readouterr().out


def test_ivf_nprobe_from_the_config_file_reaches_the_index_app_ask_searches(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "docqa.toml"
    config.write_text('[index]\nindex_type = "ivf"\nivf_nprobe = 3\n[answer]\nmin_evidence_score = 0\n',
                      encoding="utf-8")
    docs = write_corpus(tmp_path / "docs", {f"note-{i}.txt": f"第{i}号笔记：星河数据库的第{i}个配置项是端口 {7000 + i}。"
                                             for i in range(120)})
    run_ingest(load_settings(), [docs], IngestOptions(), embedder_factory=FakeEmbedder)
    monkeypatch.setattr(wiring, "load_embedder", lambda settings: FakeEmbedder())
    monkeypatch.setattr(wiring, "build_generator", lambda settings: ScriptedGenerator("7005 [1]"))
    built = []
    real_build = wiring.build_pipeline
    monkeypatch.setattr(ask, "build_pipeline", lambda *a, **k: built.append(real_build(*a, **k)) or built[-1])
    assert ask.main(["第5号笔记的端口是多少？"]) == 0
    index = built[0].retriever.kb.index
    assert faiss.extract_index_ivf(index).nprobe == 3
