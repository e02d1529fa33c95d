"""The chat page end to end on the real pipeline, headless (AppTest): a knowledge base built by the real ingest
with the real embedder in a temporary DOCQA_HOME, and the packaged LLM with a short answer budget."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import streamlit as st
from app_fakes import page_env
from streamlit.testing.v1 import AppTest


pytestmark = pytest.mark.slow

PAGE = str(Path(__file__).resolve().parent.parent / "app" / "web" / "chat_page.py")
# Loading is shared with the session's other real-model tests; answering on 2 busy cores takes a while.
TIMEOUT = 600


@pytest.fixture
def real_page(real_app_settings, real_pipeline, monkeypatch):
    for name, value in page_env(real_app_settings).items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    yield at
    st.cache_resource.clear()


def test_a_chat_turn_on_the_real_pipeline(real_page):
    at = real_page
    assert [(m.label, m.value) for m in at.sidebar.metric] == [("文档", "2"), ("段落", "3")]
    at.chat_input[0].set_value("星河数据库默认监听哪个端口？").run()
    assert not at.exception, at.exception
    assistant = at.chat_message[1]
    body = "\n".join(h.proto.body for h in assistant.html)
    answer = html.unescape(re.search(r'class="docqa-answer"[^>]*>(.*?)</div>', body, re.S).group(1))
    assert "7341" in answer
    assert "星河数据库手册.md" in body and "<mark" in body
    assert any("0." in m.value for m in assistant.expander[0].markdown)  # the scores table


def test_an_unanswerable_question_is_refused_on_the_real_pipeline(real_page):
    at = real_page
    at.chat_input[0].set_value("火星的首都是哪座城市？").run()
    assistant = at.chat_message[1]
    assert [w.value for w in assistant.warning] == ["文档中没有找到答案"]
    assert "根据现有文档无法回答该问题" in html.unescape("\n".join(h.proto.body for h in assistant.html))
