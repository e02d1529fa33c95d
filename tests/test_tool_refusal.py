"""A docqa tool's refusal ends an agent's run as that refusal (app/langchain/tool_refusal.py, LocalChatModel's
end_on_tool_refusal): read from the tool result's structured part, never from its text; an answered result is
still the model's to use."""

from __future__ import annotations

import pytest
from app_fakes import CitingGenerator, ingest_with_hash_embedder, write_corpus
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from test_agent import QUESTION, ScriptedTurns

from app.config import GenerationSettings, Settings
from app.langchain.chat_model_adapter import LocalChatModel
from app.langchain.langchain_tool import build_knowledge_base_tools
from app.langchain.tool_refusal import ToolRefusal, last_step_refusal
from app.wiring import assemble_pipeline, build_retriever
from ingest.testing.fake_embedder import FakeEmbedder

SEARCH_CALL = ('<tool_call>\n{"name": "search_knowledge_base", "arguments": {"question": "' + QUESTION
               + '"}}\n</tool_call>')
FROM_OWN_KNOWLEDGE = "星河数据库默认监听 5432 端口。"


def _tools(tmp_path, min_evidence_score: float):
    settings = Settings(data_dir=tmp_path / "home")
    # 0: the hash embedder's low cosines pass the evidence gate (the tool answers); at 1 nothing does (it
    # refuses, as it does for a question the documents do not hold).
    settings.answer.min_evidence_score = min_evidence_score
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    retriever = build_retriever(settings, FakeEmbedder())
    pipeline = assemble_pipeline(retriever, CitingGenerator("星河数据库默认监听 7341 端口 [{n}]。", "7341"),
                                 FakeEmbedder(dimension=256), settings)
    return build_knowledge_base_tools(settings=settings, pipeline=pipeline)


def _run(tools, generator, **model_fields):
    model = LocalChatModel(generator=generator, generation=GenerationSettings(max_new_tokens=64), **model_fields)
    return create_agent(model, tools.tools).invoke({"messages": [HumanMessage(QUESTION)]})["messages"]


def test_a_refused_search_ends_the_run_as_the_refusal_without_asking_the_model(tmp_path):
    tools = _tools(tmp_path, min_evidence_score=1.0)
    generator = ScriptedTurns(SEARCH_CALL, FROM_OWN_KNOWLEDGE)
    messages = _run(tools, generator)
    tool_result, final = messages[2], messages[-1]
    assert tool_result.artifact.refused and tool_result.content.startswith("NOT FOUND")
    assert final.content == tool_result.artifact.text == tools.settings.answer.refusal_zh
    assert final.response_metadata["answer_path"] == "tool_refusal"
    assert final.response_metadata["refusing_tool"] == "search_knowledge_base"
    assert len(generator.calls) == 1 and generator.replies == [FROM_OWN_KNOWLEDGE]  # never asked to reply


def test_with_the_ending_off_the_model_writes_the_reply_after_a_refusal(tmp_path):
    tools = _tools(tmp_path, min_evidence_score=1.0)
    messages = _run(tools, ScriptedTurns(SEARCH_CALL, FROM_OWN_KNOWLEDGE), end_on_tool_refusal=False)
    assert messages[-1].content == FROM_OWN_KNOWLEDGE
    assert messages[-1].response_metadata["answer_path"] == "model"


def test_an_answered_search_is_the_models_to_use(tmp_path):
    tools = _tools(tmp_path, min_evidence_score=0.0)
    messages = _run(tools, ScriptedTurns(SEARCH_CALL, "端口是 7341 [1]。"))
    assert not messages[2].artifact.refused
    assert messages[-1].content == "端口是 7341 [1]。"
    assert messages[-1].response_metadata["answer_path"] == "model"


def _call(call_id: str, name: str = "ask_documents") -> dict:
    return {"name": name, "args": {"question": QUESTION}, "id": call_id, "type": "tool_call"}


def _mcp_result(call_id: str, refused: bool, answer: str) -> ToolMessage:
    """An MCP ask_documents result as langchain-mcp-adapters hands it over."""
    return ToolMessage(content=f'{{"refused": {str(refused).lower()}}}', tool_call_id=call_id, name="ask_documents",
                       artifact={"structured_content": {"refused": refused, "answer": answer}})


def test_an_mcp_ask_documents_refusal_is_read_from_its_structured_content():
    messages = [HumanMessage(QUESTION), AIMessage("", tool_calls=[_call("a")]),
                _mcp_result("a", True, "根据现有文档无法回答该问题。")]
    assert last_step_refusal(messages) == ToolRefusal("ask_documents", "根据现有文档无法回答该问题。")


@pytest.mark.parametrize("last_step", [
    # One of two calls answered: the model uses that answer.
    [_mcp_result("a", True, "无法回答"), _mcp_result("b", False, "7341")],
    # Refusal-looking text without the structured marker (a document could say "NOT FOUND"): not a refusal.
    [ToolMessage(content="NOT FOUND: 根据现有文档无法回答该问题。", tool_call_id="a", name="search_knowledge_base")],
    # A tool error is the model's to handle (retry with other arguments, or tell the user).
    [ToolMessage(content="Error: bad base", tool_call_id="a", name="ask_documents", status="error",
                 artifact={"structured_content": {"refused": True, "answer": "x"}})],
    # Nothing was called since the model's last turn.
    [],
])
def test_only_a_step_of_refusals_alone_ends_the_run(last_step):
    messages = [HumanMessage(QUESTION), AIMessage("", tool_calls=[_call("a"), _call("b")]), *last_step]
    assert last_step_refusal(messages) is None


def test_a_refusal_before_the_models_last_turn_does_not_end_a_later_one():
    messages = [HumanMessage(QUESTION), AIMessage("", tool_calls=[_call("a")]), _mcp_result("a", True, "无法回答"),
                AIMessage("文档中没有答案。"), HumanMessage("那你好吗？")]
    assert last_step_refusal(messages) is None
