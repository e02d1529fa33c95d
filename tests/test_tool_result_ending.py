"""A docqa tool's verdict ends an agent's run (app/langchain/tool_result_ending.py, LocalChatModel's
end_on_tool_refusal / end_on_tool_answer): read from the tool result's structured part, never from its text; a
refusal ends it whatever else is bound, an answer only when docqa's tools are the only ones bound."""

from __future__ import annotations

import pytest
from app_fakes import CitingGenerator, ingest_with_hash_embedder, write_corpus
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from test_agent import QUESTION, ScriptedTurns

from app.config import GenerationSettings, Settings
from app.langchain.chat_model_adapter import LocalChatModel
from app.langchain.langchain_tool import build_knowledge_base_tools
from app.langchain.tool_result_ending import DocqaResult, ToolEnding, tool_result_ending
from app.wiring import assemble_pipeline, build_retriever
from ingest.testing.fake_embedder import FakeEmbedder

SEARCH_CALL = ('<tool_call>\n{"name": "search_knowledge_base", "arguments": {"question": "' + QUESTION
               + '"}}\n</tool_call>')
FROM_OWN_KNOWLEDGE = "星河数据库默认监听 5432 端口。"
DOCQA_TOOLS = ["ask_documents", "list_documents"]


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
    return create_agent(model, tools).invoke({"messages": [HumanMessage(QUESTION)]})["messages"]


def test_a_refused_search_ends_the_run_as_the_refusal_without_asking_the_model(tmp_path):
    tools = _tools(tmp_path, min_evidence_score=1.0)
    generator = ScriptedTurns(SEARCH_CALL, FROM_OWN_KNOWLEDGE)
    messages = _run(tools.tools, generator)
    tool_result, final = messages[2], messages[-1]
    assert tool_result.artifact.refused and tool_result.content.startswith("NOT FOUND")
    assert final.content == tool_result.artifact.text == tools.settings.answer.refusal_zh
    assert final.response_metadata["answer_path"] == "tool_refusal"
    assert final.response_metadata["refusing_tool"] == "search_knowledge_base"
    assert len(generator.calls) == 1 and generator.replies == [FROM_OWN_KNOWLEDGE]  # never asked to reply


def test_with_the_ending_off_the_model_writes_the_reply_after_a_refusal(tmp_path):
    tools = _tools(tmp_path, min_evidence_score=1.0)
    messages = _run(tools.tools, ScriptedTurns(SEARCH_CALL, FROM_OWN_KNOWLEDGE), end_on_tool_refusal=False)
    assert messages[-1].content == FROM_OWN_KNOWLEDGE
    assert messages[-1].response_metadata["answer_path"] == "model"


def test_an_answered_search_ends_the_run_as_the_tools_cited_answer_without_asking_the_model(tmp_path):
    tools = _tools(tmp_path, min_evidence_score=0.0)
    generator = ScriptedTurns(SEARCH_CALL, "I'm sorry, but I can't assist with that.")
    messages = _run(tools.tools, generator)
    answer, final = messages[2].artifact, messages[-1]
    assert not answer.refused and answer.citations
    n = answer.citations[0].number
    # The checked answer with its [n] markers, then the source each [n] points at.
    source = f"[{n}] 星河数据库手册.md — 星河数据库 > 端口"
    assert final.content == f"星河数据库默认监听 7341 端口 [{n}]。\n\n{source}"
    assert final.response_metadata["answer_path"] == "tool_answer"
    assert final.response_metadata["answering_tool"] == "search_knowledge_base"
    assert final.response_metadata["sources"] == [source]
    assert len(generator.calls) == 1  # the model was never asked to reply


def test_with_the_answer_ending_off_the_model_writes_the_reply_after_an_answer(tmp_path):
    tools = _tools(tmp_path, min_evidence_score=0.0)
    messages = _run(tools.tools, ScriptedTurns(SEARCH_CALL, "端口是 7341 [1]。"), end_on_tool_answer=False)
    assert not messages[2].artifact.refused
    assert messages[-1].content == "端口是 7341 [1]。"
    assert messages[-1].response_metadata["answer_path"] == "model"


@tool
def convert_port(port: int) -> str:
    """Convert a port number to hexadecimal."""
    return hex(port)


def test_with_another_tool_bound_the_model_writes_the_reply_after_an_answer(tmp_path):
    # The model may have more to do with the answer (here: convert it), so docqa's answer does not end the run.
    tools = _tools(tmp_path, min_evidence_score=0.0)
    messages = _run([*tools.tools, convert_port], ScriptedTurns(SEARCH_CALL, "端口是 7341 [1]。"))
    assert messages[-1].content == "端口是 7341 [1]。"
    assert messages[-1].response_metadata["answer_path"] == "model"


def test_with_another_tool_bound_a_refusal_still_ends_the_run(tmp_path):
    tools = _tools(tmp_path, min_evidence_score=1.0)
    messages = _run([*tools.tools, convert_port], ScriptedTurns(SEARCH_CALL, FROM_OWN_KNOWLEDGE))
    assert messages[-1].response_metadata["answer_path"] == "tool_refusal"


def _call(call_id: str, name: str = "ask_documents") -> dict:
    return {"name": name, "args": {"question": QUESTION}, "id": call_id, "type": "tool_call"}


def _mcp_result(call_id: str, refused: bool, answer: str, citations: list[dict] | None = None) -> ToolMessage:
    """An MCP ask_documents result as langchain-mcp-adapters hands it over."""
    return ToolMessage(content=f'{{"refused": {str(refused).lower()}}}', tool_call_id=call_id, name="ask_documents",
                       artifact={"structured_content": {"refused": refused, "answer": answer,
                                                        "citations": citations or []}})


CITED = [{"number": 2, "base": "default", "source": "/docs/手册.pdf", "page": 3, "location": "p.3",
          "heading": "配置 > 网络", "quote": "默认端口 7341。"}]


def _step(*results: ToolMessage) -> list:
    return [HumanMessage(QUESTION), AIMessage("", tool_calls=[_call("a"), _call("b")]), *results]


def test_an_mcp_ask_documents_refusal_is_read_from_its_structured_content():
    ending = tool_result_ending(_step(_mcp_result("a", True, "根据现有文档无法回答该问题。")), DOCQA_TOOLS)
    assert ending == ToolEnding("tool_refusal", "ask_documents", DocqaResult(True, "根据现有文档无法回答该问题。"))
    assert ending.reply == "根据现有文档无法回答该问题。"


def test_an_mcp_ask_documents_answer_is_read_from_its_structured_content_with_its_sources():
    ending = tool_result_ending(_step(_mcp_result("a", False, "端口是 7341 [2]。", CITED)), DOCQA_TOOLS)
    assert ending is not None and ending.kind == "tool_answer"
    assert ending.reply == "端口是 7341 [2]。\n\n[2] 手册.pdf p.3 — 配置 > 网络"


def test_the_same_answer_from_two_calls_ends_the_run_once():
    same = [_mcp_result("a", False, "7341 [2]", CITED), _mcp_result("b", False, "7341 [2]", CITED)]
    assert tool_result_ending(_step(*same), DOCQA_TOOLS).reply == "7341 [2]\n\n[2] 手册.pdf p.3 — 配置 > 网络"


@pytest.mark.parametrize("last_step", [
    # A refusal and an answer: the model weighs them.
    [_mcp_result("a", True, "无法回答"), _mcp_result("b", False, "7341")],
    # Two answers that differ (e.g. two bases): the model weighs them.
    [_mcp_result("a", False, "7341 [2]", CITED), _mcp_result("b", False, "5432")],
    # Answer- or refusal-looking text without the structured marker (a document could say either): not docqa's.
    [ToolMessage(content="NOT FOUND: 根据现有文档无法回答该问题。", tool_call_id="a", name="search_knowledge_base")],
    [ToolMessage(content="Answer: 7341 [1]\n\nSources:\n[1] 手册.md", tool_call_id="a", name="search_knowledge_base")],
    # A tool error is the model's to handle (retry with other arguments, or tell the user).
    [ToolMessage(content="Error: bad base", tool_call_id="a", name="ask_documents", status="error",
                 artifact={"structured_content": {"refused": True, "answer": "x"}})],
    [ToolMessage(content="Error: bad base", tool_call_id="a", name="ask_documents", status="error",
                 artifact={"structured_content": {"refused": False, "answer": "7341"}})],
    # An answer beside a tool error.
    [_mcp_result("a", False, "7341"), ToolMessage(content="Error: timeout", tool_call_id="b", name="ask_documents",
                                                  status="error")],
    # Nothing was called since the model's last turn.
    [],
])
def test_only_a_step_of_one_docqa_verdict_alone_ends_the_run(last_step):
    assert tool_result_ending(_step(*last_step), DOCQA_TOOLS) is None


def test_an_answer_ends_the_run_only_when_docqas_tools_are_the_only_ones_bound():
    answered = _step(_mcp_result("a", False, "7341 [2]", CITED))
    assert tool_result_ending(answered, [*DOCQA_TOOLS, "send_email"]) is None
    assert tool_result_ending(answered, DOCQA_TOOLS, on_answer=False) is None
    refused = _step(_mcp_result("a", True, "无法回答"))
    assert tool_result_ending(refused, [*DOCQA_TOOLS, "send_email"]).kind == "tool_refusal"
    assert tool_result_ending(refused, DOCQA_TOOLS, on_refusal=False) is None


def test_a_verdict_before_the_models_last_turn_does_not_end_a_later_one():
    for verdict in (_mcp_result("a", True, "无法回答"), _mcp_result("a", False, "7341 [2]", CITED)):
        messages = [HumanMessage(QUESTION), AIMessage("", tool_calls=[_call("a")]), verdict,
                    AIMessage("文档中的答案如上。"), HumanMessage("那你好吗？")]
        assert tool_result_ending(messages, DOCQA_TOOLS) is None
