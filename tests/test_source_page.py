"""A citation opens the original at the cited place: the chat's source cards carry a link to the source page
(AppTest over a real knowledge base with a scripted generator), and the source page shows the PDF page image,
the passage in context, or one clear line for a link that is incomplete, stale or names a base that is gone."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import streamlit as st
from app_fakes import CitingGenerator, ingest_with_hash_embedder, write_corpus
from streamlit.testing.v1 import AppTest

import app.web.components as components
from app.config import load_settings
from app.sources.cited_chunk import DOC_PREFIX_CHARS
from app.wiring import assemble_pipeline, build_retriever, knowledge_store
from ingest.testing.documents import SAMPLE_DIR
from ingest.testing.fake_embedder import FakeEmbedder

WEB = Path(__file__).resolve().parent.parent / "app" / "web"
TIMEOUT = 30
ANSWER = "分词方式决定了同样一段话要占用多少 token [{n}]。"
CITED = "分词方式决定了同样一段话要占用多少 token，也就间接决定了上下文窗口能装下多少内容。"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A knowledge base holding the Chinese sample PDF and a small Markdown/text corpus."""
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path))
    # The hash embedder's cosines are below the evidence gate calibrated on e5's.
    monkeypatch.setenv("DOCQA_ANSWER__MIN_EVIDENCE_SCORE", "0")
    docs = write_corpus(tmp_path / "docs")
    shutil.copy(SAMPLE_DIR / "tokenizer_notes.pdf", docs / "tokenizer_notes.pdf")
    settings = load_settings()
    ingest_with_hash_embedder(settings, [docs])
    return settings, docs


def _chat_link(settings) -> dict[str, str]:
    """Ask the chat page; the query of the first source card's "open in the original" link."""
    pipeline = assemble_pipeline(build_retriever(settings, FakeEmbedder()), CitingGenerator(ANSWER, "分词方式决定了"),
                                 FakeEmbedder(dimension=256), settings)
    original = components.build_pipeline
    components.build_pipeline = lambda settings, **options: pipeline
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(WEB / "chat_page.py"), default_timeout=TIMEOUT).run()
        at.chat_input[0].set_value("分词方式决定了什么？").run()
        assert not at.exception, at.exception
    finally:
        components.build_pipeline = original
        st.cache_resource.clear()
    [button] = [b for b in at.link_button if b.proto.label == "在原文中查看"]
    url = urlsplit(button.proto.url)
    assert url.path == "source" and not url.scheme and not url.netloc  # relative: follows server.baseUrlPath
    return dict(parse_qsl(url.query))


def _source_page(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(WEB / "source_page.py"), default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _html(at: AppTest) -> str:
    return "\n".join(h.proto.body for h in at.html)


def test_a_citation_links_to_its_page_and_the_page_shows_it_marked(home):
    settings, _ = home
    query = _chat_link(settings)
    assert query["quote"] == CITED and query["lang"] == "zh"
    # The link names the base the passage came from, so it opens the same text whichever base the page shows.
    assert len(query["doc"]) == DOC_PREFIX_CHARS and query["chunk"].isdigit() and query["base"] == settings.kb_name
    at = _source_page(query)
    [image] = at.image
    assert image.proto.imgs[0].caption == "高亮处是回答所引的句子"
    assert "tokenizer_notes.pdf" in _html(at) and "第 1 / 2 页" in _html(at)
    assert not at.warning and not at.error


def _chunk_of(settings, name: str):
    snapshot = knowledge_store(settings).open()
    try:
        return next(c for c in snapshot.iter_chunks() if c.source.endswith(name))
    finally:
        snapshot.close()


def test_a_text_source_shows_the_passage_with_the_sentence_marked(home):
    settings, _ = home
    chunk = _chunk_of(settings, "星河数据库手册.md")
    at = _source_page({"chunk": str(chunk.chunk_id), "doc": chunk.doc_id[:16], "quote": "备份保留十四天",
                       "lang": "en"})
    body = _html(at)
    assert "星河数据库手册.md" in body and "备份保留十四天</mark>" in body
    assert at.title[0].value == "The cited place" and not at.image


def test_a_changed_original_says_so_and_shows_the_stored_text(home):
    settings, docs = home
    chunk = _chunk_of(settings, "aurora-notes.txt")
    (docs / "aurora-notes.txt").write_text("Edited after indexing.", encoding="utf-8")
    at = _source_page({"chunk": str(chunk.chunk_id), "doc": chunk.doc_id[:16], "quote": "three times"})
    [warning] = at.warning
    assert "changed since it was indexed" in warning.value and "three times</mark>" in _html(at)


@pytest.mark.parametrize("query, expected", [
    ({}, "这个链接不完整"),
    ({"chunk": "x1"}, "这个链接不完整"),
    ({"chunk": "0", "doc": "0" * 16}, "no longer in the knowledge base"),
    ({"chunk": "0", "doc": "0" * 16, "base": "no-such-base"}, "no-such-base"),
])
def test_a_bad_link_gets_one_clear_line(home, query, expected):
    at = _source_page(query)
    lines = [e.value for e in (*at.info, *at.error)]
    assert len(lines) == 1 and expected in lines[0].replace("&#45;", "-")
    assert not at.image
