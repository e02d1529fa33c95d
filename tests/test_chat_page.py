"""The Streamlit chat page driven headless with AppTest over a fake pipeline (real AnswerPipeline logic, scripted
generator): history, streaming result, sources, refusal, settings flow, language, safe rendering."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import streamlit as st
from app_fakes import ANSWER, fake_pipeline, ingest_with_hash_embedder, write_corpus
from streamlit.testing.v1 import AppTest

import app.web.components as components
from app.config import load_settings

PAGE = str(Path(__file__).resolve().parent.parent / "app" / "web" / "chat_page.py")
TIMEOUT = 30


@pytest.fixture
def page(tmp_path, monkeypatch):
    """An AppTest of the page whose pipeline is the fake one; returns (app test, the pipeline it uses)."""
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path))
    settings = load_settings()
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])  # so the sidebar has a base to show
    pipeline = fake_pipeline(settings)
    monkeypatch.setattr(components, "build_pipeline", lambda settings, **options: pipeline)
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    yield at, pipeline
    st.cache_resource.clear()


def _html(element) -> str:
    return "\n".join(h.proto.body for h in element.html)


def test_the_sidebar_shows_the_knowledge_base(page):
    at, _ = page
    assert [(m.label, m.value) for m in at.sidebar.metric] == [("文档", "2"), ("段落", "3")]
    status = html.unescape(at.sidebar.markdown[0].value).replace("\u2060", "")
    assert "向量模型: test-hash:32" in status and "索引类型: flat (32-dim)" in status
    assert "大模型: packaged:qwen2.5-coder-1.5b-instruct" in status


def _ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def test_a_chat_turn_shows_the_answer_and_its_cited_source(page):
    at, pipeline = page
    _ask(at, "什么是 RAG？")
    user, assistant = at.chat_message
    assert user.name == "user" and "什么是 RAG？" in _html(user)
    body = _html(assistant)
    assert "RAG 先检索相关段落，再让模型根据这些段落作答" in html.unescape(body)
    assert re.search(r"<span[^>]*>\[1\]</span>", body)  # the citation marker, styled
    # Source: file name (escaped), page, heading; the cited sentence highlighted.
    assert "rag&lt;b&gt;.md" in body and "第 2 页" in body and "第一章 &gt; RAG" in body
    marked = re.search(r"<mark[^>]*>(.*?)</mark>", body).group(1)
    assert marked == "检索增强生成（RAG）先检索相关段落，再让模型根据这些段落作答。"
    assert "出处" in [m.value for m in assistant.markdown][0]
    scores = [m.value for m in assistant.expander[0].markdown]
    assert "0.9000" in scores[0] and "向量相似度" in scores[0]
    assert pipeline.retriever.calls == ["什么是 RAG？"]


def test_document_text_is_rendered_inert(page):
    at, _ = page
    _ask(at, "什么是 RAG？")
    body = _html(at)
    # Every tag in the page's HTML is one of ours; the document's markup arrives only as text.
    assert set(re.findall(r"<(\w+)", body)) <= {"div", "span", "mark", "b"}
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in body
    assert "&lt;img src=http://127.0.0.1:9/x.png" in body
    for element in at.markdown:
        assert "](" not in element.value and "<" not in element.value


def test_history_is_kept_and_new_chat_clears_it(page):
    at, _ = page
    _ask(at, "什么是 RAG？")
    _ask(at, "BM25 是什么？")
    assert [m.name for m in at.chat_message] == ["user", "assistant", "user", "assistant"]
    at.sidebar.button(key="new_chat").click().run()
    assert len(at.chat_message) == 0


def test_a_follow_up_gets_the_conversation_and_new_chat_resets_it(page):
    at, pipeline = page
    standalone = "RAG 为什么要先检索相关段落？"
    pipeline.generator.answers = [ANSWER, standalone, ANSWER, ANSWER]
    _ask(at, "什么是 RAG？")
    _ask(at, "它为什么要先检索？")
    # The follow-up was rewritten from the conversation (the rewrite prompt holds the first turn), searched for as
    # its standalone form and the message itself, and the page says what it searched for.
    rewrite_prompt = pipeline.generator.calls[1][-1]["content"]
    assert "什么是 RAG？" in rewrite_prompt and "RAG 先检索相关段落" in rewrite_prompt
    assert pipeline.retriever.calls == ["什么是 RAG？", standalone, "它为什么要先检索？"]
    assert f"检索问题：{standalone}" in [c.value for c in at.chat_message[3].caption]
    at.sidebar.button(key="new_chat").click().run()
    assert at.session_state.messages == []
    # After New chat the same message is a first message again: no rewrite, no history.
    _ask(at, "它为什么要先检索？")
    assert pipeline.retriever.calls[-1] == "它为什么要先检索？" and len(pipeline.generator.calls) == 4
    assert [m["role"] for m in pipeline.generator.calls[-1]] == ["system", "user"]


def test_sidebar_settings_reach_the_pipeline(page):
    at, pipeline = page
    at.sidebar.slider(key="set_temperature").set_value(0.7)
    at.sidebar.number_input(key="set_max_tokens").set_value(64)
    at.sidebar.number_input(key="set_no_repeat").set_value(3)
    at.sidebar.number_input(key="set_gen_top_k").set_value(5)
    at.sidebar.number_input(key="set_top_k").set_value(2)
    at.run()
    _ask(at, "什么是 RAG？")
    used = pipeline.generator.settings_seen[-1]
    assert (used.temperature, used.max_new_tokens, used.no_repeat_ngram_size) == (0.7, 64, 3)
    # Two knobs once both called top-k: sampling goes to the LLM, passages to retrieval.
    assert used.sampling_top_k == 5 and pipeline.retriever.top_ks[-1] == 2


def test_a_refusal_is_shown_as_such_with_the_passages_considered(page):
    at, pipeline = page
    at.sidebar.number_input(key="set_min_evidence").set_value(0.95)  # above every passage's score: the gate refuses
    at.run()
    _ask(at, "火星上有几个湖？")
    assistant = at.chat_message[1]
    assert "根据现有文档无法回答该问题" in html.unescape(_html(assistant))
    assert [w.value for w in assistant.warning] == ["文档中没有找到答案"]
    assert "最接近的段落" in assistant.expander[0].label
    assert "bm25.md" in _html(assistant.expander[0])
    assert pipeline.generator.settings_seen == []  # refused before the LLM


def test_labels_follow_the_question_language_or_the_setting(page):
    at, _ = page
    _ask(at, "What is RAG?")
    assert at.title[0].value == "Document Q&A"
    assert "Sources" in at.chat_message[1].markdown[0].value
    at.sidebar.selectbox(key="ui_language").set_value("zh").run()
    _ask(at, "What is BM25?")
    assert at.title[0].value == "文档问答"


def test_settings_survive_a_language_switch(page):
    at, _ = page
    at.sidebar.number_input(key="set_top_k").set_value(7).run()
    _ask(at, "What is RAG?")
    assert at.sidebar.number_input(key="set_top_k").value == 7


def test_an_empty_knowledge_base_says_how_to_add_documents(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path))
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("python -m ingest" in i.value for i in at.info)
    _ask(at, "什么是 RAG？")
    assert "python -m ingest" in at.chat_message[1].error[0].value


def test_a_short_answer_highlights_the_sentence_matching_the_question(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path))
    settings = load_settings()
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    pipeline = fake_pipeline(settings, answer="9秒 [1]")
    pipeline.retriever.passages[0].chunk.text = "月影协议是一种心跳协议。月影协议规定每个节点每隔九秒发送一次心跳。"
    monkeypatch.setattr(components, "build_pipeline", lambda s, **options: pipeline)
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _ask(at, "月影协议规定心跳间隔是多少秒？")
    marked = re.search(r"<mark[^>]*>(.*?)</mark>", _html(at.chat_message[1])).group(1)
    assert marked == "月影协议规定每个节点每隔九秒发送一次心跳。"
