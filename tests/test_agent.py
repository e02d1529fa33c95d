"""Agents with the knowledge-base tool: the wiring with a fake chat model, the local chat model adapter over a
scripted generator (tool-call parsing, ToolMessages, streaming), and (slow) a real agent run on the packaged LLM."""

from __future__ import annotations

import re

import pytest
from app_fakes import CitingGenerator, ingest_with_hash_embedder, write_corpus
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

from app.config import GenerationSettings, Settings
from app.langchain.chat_model_adapter import LocalChatModel
from app.langchain.langchain_tool import build_knowledge_base_tools
from app.wiring import assemble_pipeline, build_retriever
from ingest.testing.fake_embedder import FakeEmbedder

QUESTION = "星河数据库默认监听哪个端口？"
CALL = {"name": "search_knowledge_base", "args": {"question": QUESTION}, "id": "call_1", "type": "tool_call"}


class ToolCallingFakeModel(FakeMessagesListChatModel):
    """LangChain's fake chat model lacks bind_tools; agents only need it to return a model."""

    def bind_tools(self, tools, **kwargs):
        return self


class ScriptedTurns:
    """A Generator that replies with the next scripted text per call, in pieces, recording the messages."""

    name = "scripted-turns"
    n_ctx = 4096

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict]] = []

    def stream(self, messages, settings):
        self.calls.append(messages)
        reply = self.replies.pop(0)
        for i in range(0, len(reply), 4):
            yield reply[i:i + 4]


@pytest.fixture
def kb_tools(tmp_path):
    settings = Settings(data_dir=tmp_path / "home")
    # The evidence gate is calibrated on e5 cosines; the hash embedder's cosines are lower, so it stays open here.
    settings.answer.min_evidence_score = 0.0
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    retriever = build_retriever(settings, FakeEmbedder())
    pipeline = assemble_pipeline(retriever, CitingGenerator("星河数据库默认监听 7341 端口 [{n}]。", "7341"),
                                 FakeEmbedder(dimension=256), settings)
    return build_knowledge_base_tools(settings=settings, pipeline=pipeline)


def test_an_agent_calls_the_tool_and_answers_from_its_result(kb_tools):
    model = ToolCallingFakeModel(responses=[AIMessage(content="", tool_calls=[CALL]),
                                            AIMessage(content="端口是 7341 [1]。")])
    result = create_agent(model, kb_tools.tools).invoke({"messages": [HumanMessage(QUESTION)]})
    kinds = [type(m).__name__ for m in result["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    tool_message = result["messages"][2]
    assert tool_message.tool_call_id == "call_1" and tool_message.name == "search_knowledge_base"
    n = kb_tools.pipeline.generator.answer.split("[")[1][0]
    assert tool_message.content.startswith(f"Answer: 星河数据库默认监听 7341 端口 [{n}]。\n\nSources:\n")
    assert f"\n[{n}] 星河数据库手册.md" in tool_message.content
    assert result["messages"][-1].content == "端口是 7341 [1]。"


def test_the_local_model_drives_an_agent_through_tool_calls_and_tool_results(kb_tools):
    generator = ScriptedTurns(
        '<tool_call>\n{"name": "search_knowledge_base", "arguments": {"question": "星河数据库 端口"}}\n</tool_call>',
        "星河数据库默认监听 7341 端口 [1]。")
    # The model writes the reply after the tool's answer here (by default docqa's answer would be the reply:
    # tests/test_tool_result_ending.py), to check how a tool result reaches the model.
    model = LocalChatModel(generator=generator, generation=GenerationSettings(max_new_tokens=64),
                           end_on_tool_answer=False)
    result = create_agent(model, kb_tools.tools, system_prompt="你是文档助手。").invoke(
        {"messages": [HumanMessage(QUESTION)]})
    ai_call, tool_result, final = result["messages"][1:]
    assert ai_call.tool_calls[0]["args"] == {"question": "星河数据库 端口"} and ai_call.content == ""
    assert isinstance(tool_result, ToolMessage) and "7341" in tool_result.content
    assert final.content == "星河数据库默认监听 7341 端口 [1]。"
    # The first prompt announced the tools in the system turn; the second carried the call and its result.
    first, second = generator.calls
    assert first[0]["role"] == "system" and first[0]["content"].startswith("你是文档助手。\n\n# Tools")
    assert '"name": "search_knowledge_base"' in first[0]["content"]
    assert second[2] == {"role": "assistant", "content": '<tool_call>\n{"name": "search_knowledge_base", '
                                                         '"arguments": {"question": "星河数据库 端口"}}\n</tool_call>'}
    assert second[3]["role"] == "user" and second[3]["content"].startswith("<tool_response>\nAnswer: ")


def test_streaming_shows_text_but_never_the_tool_call_markup(kb_tools):
    generator = ScriptedTurns('让我查一下。\n<tool_call>\n{"name": "list_knowledge_base_documents", "arguments": {}}'
                              '\n</tool_call>')
    model = LocalChatModel(generator=generator).bind_tools(kb_tools.tools)
    chunks = list(model.stream("有哪些文档？"))
    assert all("<tool" not in c.content and "{" not in c.content for c in chunks)
    merged = sum(chunks[1:], chunks[0])
    assert isinstance(merged, AIMessageChunk) and merged.content.strip() == "让我查一下。"
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("list_knowledge_base_documents", {})]


def test_without_tools_the_model_is_a_plain_streaming_chat_model():
    generator = ScriptedTurns("你好！{这不是工具调用}STOP 之后的文字")
    model = LocalChatModel(generator=generator)
    assert model.invoke("你好", stop=["STOP"]).content == "你好！{这不是工具调用}"
    assert generator.calls[0] == [{"role": "user", "content": "你好"}]


@pytest.mark.slow
def test_a_real_agent_run_on_the_packaged_model(real_app_settings, real_pipeline):
    tools = build_knowledge_base_tools(settings=real_app_settings, pipeline=real_pipeline)
    model = LocalChatModel(generator=real_pipeline.generator,
                           generation=GenerationSettings(max_new_tokens=64, temperature=0.0))
    from app.langchain.agent_example import build_agent

    result = build_agent(tools, model).invoke({"messages": [HumanMessage(QUESTION)]},
                                              config={"recursion_limit": 6})
    messages = result["messages"]
    calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert calls and calls[0]["name"] == "search_knowledge_base"
    # Decoded under the grammar: the call is well formed by construction.
    assert messages[1].response_metadata["tool_call_path"] == "grammar"
    tool_results = [m for m in messages if isinstance(m, ToolMessage)]
    answer = tool_results[-1].artifact
    assert not answer.refused and "7341" in answer.text and answer.citations
    # The run ends with docqa's checked answer and its sources, not the 1.5B model's rewording of it
    # (LocalChatModel.end_on_tool_answer; bench/agent_tool_calls.py measures the whole loop).
    final = messages[-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert final.response_metadata["answer_path"] == "tool_answer"
    assert final.content.startswith(answer.text) and "7341" in final.content
    n = answer.citations[0].number
    assert f"[{n}]" in answer.text and f"\n[{n}] 星河数据库手册.md" in final.content


def test_the_plain_chain_feeds_numbered_passages_to_the_local_model(kb_tools):
    from app.langchain.agent_example import build_chain

    generator = ScriptedTurns("端口是 7341 [1]。")
    answer = build_chain(kb_tools, LocalChatModel(generator=generator)).invoke(QUESTION)
    assert answer == "端口是 7341 [1]。"
    system, user = generator.calls[0]
    assert system["role"] == "system" and re.search(r"\[\d\] 星河数据库手册\.md\n.*7341", system["content"], re.S)
    assert user == {"role": "user", "content": QUESTION}
