"""The LangChain tools over a real knowledge base on disk (real ingest, FAISS, BM25, retriever) with a fast
stand-in embedder and a scripted generator; the slow test runs them on the real models."""

from __future__ import annotations

import pytest
from app_fakes import (
    CitingGenerator,
    RecordingGenerator,
    ingest_with_hash_embedder,
    write_corpus,
)
from langchain_core.messages import ToolMessage
from langchain_core.retrievers import BaseRetriever

from app.config import Settings
from app.langchain.langchain_tool import DocqaRetriever, build_knowledge_base_tools
from app.wiring import assemble_pipeline, build_retriever
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.testing.fake_embedder import FakeEmbedder
from prompts.records import Answer

PORT_ANSWER = "星河数据库默认监听 7341 端口 [{n}]。"


@pytest.fixture
def kb_settings(tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path / "home")
    # The evidence gate is calibrated on e5 cosines; the hash embedder's cosines are lower, so it stays open here.
    settings.answer.min_evidence_score = 0.0
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    return settings


def _tools(settings: Settings, answer: str | None = None):
    retriever = build_retriever(settings, FakeEmbedder())
    generator = RecordingGenerator(answer) if answer else CitingGenerator(PORT_ANSWER, "7341")
    pipeline = assemble_pipeline(retriever, generator, FakeEmbedder(dimension=256), settings)
    return build_knowledge_base_tools(settings=settings, pipeline=pipeline)


def test_search_returns_the_answer_with_numbered_sources(kb_settings):
    tools = _tools(kb_settings)
    assert [t.name for t in tools.tools] == ["search_knowledge_base", "list_knowledge_base_documents"]
    text = tools.search.invoke({"question": "星河数据库的默认端口是多少？"})
    n = tools.pipeline.generator.answer.split("[")[1][0]
    assert text.startswith(f"Answer: 星河数据库默认监听 7341 端口 [{n}]。")
    sources = text.split("Sources:\n", 1)[1]
    assert sources.startswith(f"[{n}] 星河数据库手册.md, 星河数据库 > 端口: \"星河数据库默认监听 7341 端口")


def test_the_tool_message_carries_the_full_answer_as_artifact(kb_settings):
    tools = _tools(kb_settings)
    message = tools.search.invoke({"type": "tool_call", "id": "call_1", "name": "search_knowledge_base",
                                   "args": {"question": "星河数据库的默认端口是多少？"}})
    assert isinstance(message, ToolMessage) and message.tool_call_id == "call_1"
    assert isinstance(message.artifact, Answer) and "7341" in message.artifact.citations[0].passage.text


def test_passages_only_skips_the_llm(kb_settings):
    tools = _tools(kb_settings)
    text = tools.search.invoke({"question": "How many times does Aurora retry a job?", "passages_only": True})
    assert text.startswith("Passages:\n[1] aurora-notes.txt (score ")
    assert "three times" in text.split("\n\n")[0]
    assert tools.pipeline.generator.calls == []


def test_passages_are_clipped_to_the_configured_length(kb_settings):
    kb_settings.answer.tool_passage_chars = 20
    text = _tools(kb_settings).search.invoke({"question": "Aurora retry", "passages_only": True})
    first = text.split("\n")[2]
    assert len(first) == 21 and first.endswith("…")


def test_a_refusal_says_not_found_and_lists_the_closest_passages(kb_settings):
    text = _tools(kb_settings, answer="根据现有文档无法回答该问题。").search.invoke({"question": "火星上有几个湖？"})
    assert text.startswith("NOT FOUND: 根据现有文档无法回答该问题。")
    assert "Closest passages considered" in text and "[1] " in text


def test_bad_input_comes_back_to_the_agent_as_an_error_message(kb_settings):
    text = _tools(kb_settings).search.invoke({"question": "   "})
    assert text == "search_knowledge_base: the question is empty"


def test_list_documents_names_every_document(kb_settings):
    text = _tools(kb_settings).list_documents.invoke({})
    lines = text.splitlines()
    assert lines[0] == "2 documents, 3 chunks:"
    assert lines[1].startswith("- aurora-notes.txt (1 chunks, updated ")
    assert lines[2].startswith("- 星河数据库手册.md — 星河数据库 (2 chunks, updated ")


def test_the_retriever_is_a_langchain_base_retriever_over_the_same_base(kb_settings):
    retriever = _tools(kb_settings).retriever(top_k=1)
    assert isinstance(retriever, DocqaRetriever) and isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("Aurora retries")
    assert len(docs) == 1 and docs[0].metadata["source"].endswith("aurora-notes.txt")


def test_a_missing_knowledge_base_is_a_clear_error(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="cannot build the knowledge-base tools: .*no knowledge base"):
        build_knowledge_base_tools(kb_dir=tmp_path / "nothing", settings=Settings(data_dir=tmp_path))


@pytest.mark.slow
def test_the_tools_end_to_end_on_the_real_pipeline(real_app_settings, real_pipeline):
    tools = build_knowledge_base_tools(kb_dir=real_app_settings.kb_path, settings=real_app_settings)
    answer = tools.search.invoke({"question": "星河数据库默认监听哪个端口？"})
    assert answer.startswith("Answer: ") and "7341" in answer.split("\n\nSources:")[0]
    assert "\n[1] 星河数据库手册.md, 星河数据库 > 端口: " in answer
    passages = tools.search.invoke({"question": "How many times does Aurora retry a failed job?",
                                    "passages_only": True})
    assert passages.startswith("Passages:\n[1] aurora-notes.txt")
    assert tools.list_documents.invoke({}).startswith("2 documents, 3 chunks:")


@pytest.mark.slow
def test_without_the_local_llm_the_tool_returns_passages_for_the_callers_own_model(real_app_settings, real_pipeline):
    tools = build_knowledge_base_tools(settings=real_app_settings, local_llm=False)
    assert tools.pipeline is None and "Returns numbered passages" in tools.search.description
    text = tools.search.invoke({"question": "星河数据库默认监听哪个端口？"})
    assert text.startswith("Passages:\n[1] 星河数据库手册.md") and "7341" in text.split("\n\n")[0]



# --- several knowledge bases behind the same tools ----------------------------------------------------------------

GARDEN = {"garden.txt": "The garden pump waters the roses for twenty minutes every morning.\n"}


def _with_garden_base(settings: Settings, tmp_path) -> Settings:
    from app.config import base_registry, settings_for_base

    base_registry(settings).create("garden")
    ingest_with_hash_embedder(settings_for_base(settings, "garden"), [write_corpus(tmp_path / "garden", GARDEN)])
    return settings


def _bases_tools(settings: Settings, bases: list[str], answer: str = "The garden pump waters the roses [{n}].",
                 keyword: str = "pump"):
    from app.answer.base_selection import open_bases_retriever

    retriever = open_bases_retriever(settings, bases, FakeEmbedder())
    pipeline = assemble_pipeline(retriever, CitingGenerator(answer, keyword), FakeEmbedder(dimension=256), settings)
    return build_knowledge_base_tools(settings=settings, pipeline=pipeline)


def test_several_bases_answer_with_sources_naming_their_base(kb_settings, tmp_path):
    tools = _bases_tools(_with_garden_base(kb_settings, tmp_path), ["default", "garden"])
    text = tools.search.invoke({"question": "What does the garden pump water?"})
    assert text.startswith("Answer: The garden pump waters the roses [")
    assert "] garden · garden.txt: \"The garden pump waters the roses" in text.split("Sources:")[1]
    passages = tools.search.invoke({"question": "Aurora garden pump", "passages_only": True})
    assert "default · aurora-notes.txt" in passages and "garden · garden.txt" in passages
    listing = tools.list_documents.invoke({})
    assert listing.startswith("Knowledge base 'default': 2 documents, 3 chunks:")
    assert "Knowledge base 'garden': 1 documents, 1 chunks:\n- garden.txt" in listing
    docs = tools.retriever().invoke("garden pump roses")
    assert {d.metadata["base"] for d in docs} == {"default", "garden"}


def test_a_damaged_base_is_left_out_and_said_an_unknown_one_is_an_error(kb_settings, tmp_path):
    from app.config import ConfigError, base_registry

    settings = _with_garden_base(kb_settings, tmp_path)
    (base_registry(settings).get("garden").folder / "base.json").write_text("{", encoding="utf-8")
    tools = _bases_tools(settings, ["default", "garden"], PORT_ANSWER, "7341")
    assert "knowledge base 'garden' left out: " in tools.list_documents.invoke({})
    assert tools.search.invoke({"question": "星河数据库的默认端口是多少？"}).startswith("Answer: 星河数据库默认监听 7341")
    with pytest.raises(ConfigError, match="no knowledge base named 'nosuch'"):
        build_knowledge_base_tools(settings=settings, bases=["default", "nosuch"], local_llm=False)


@pytest.mark.slow
def test_bases_through_the_tool_builder_with_the_real_embedder(real_app_settings, tmp_path):
    from app.config import base_registry, settings_for_base
    from app.wiring import run_ingest

    settings = real_app_settings
    if not base_registry(settings).has("garden"):
        base_registry(settings).create("garden")
    run_ingest(settings_for_base(settings, "garden"), [write_corpus(tmp_path / "garden", GARDEN)])
    tools = build_knowledge_base_tools(settings=settings, bases=["default", "garden"], local_llm=False)
    text = tools.search.invoke({"question": "What does the garden pump water?"})
    assert text.startswith("Passages:\n[1] garden · garden.txt") and "roses" in text.split("\n\n")[0]
    text = tools.search.invoke({"question": "How many times does Aurora retry a failed job?"})
    assert text.startswith("Passages:\n[1] default · aurora-notes.txt")
