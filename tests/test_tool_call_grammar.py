"""Constrained tool calls: LangChain's tool_choice forms, the grammar each allows (checked with llama.cpp's own
grammar engine on the packaged model's vocabulary, and by decoding with the real model under it), and the chat
model's three paths (grammar, native, lenient) with the path named in the reply."""

from __future__ import annotations

from typing import Literal

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from app.config import GenerationSettings
from app.generation.base import ToolCallReply
from app.langchain.chat_model_adapter import LocalChatModel
from app.langchain.tool_call_grammar import (
    ToolChoice,
    ToolChoiceError,
    normalise_tool_choice,
    parse_constrained_call,
    tool_call_grammar,
)


class SearchArgs(BaseModel):
    question: str = Field(description="the question")
    top_k: int = Field(default=5, description="passages")
    passages_only: bool = False


class Filter(BaseModel):
    field: str
    values: list[str]


class FilteredArgs(BaseModel):
    query: str
    filters: list[Filter] = Field(default_factory=list)
    mode: Literal["any", "all"] = "any"


@tool(args_schema=SearchArgs)
def search_docs(question: str, top_k: int = 5, passages_only: bool = False) -> str:
    """Search the documents."""
    return "NOT FOUND"


@tool
def list_docs() -> str:
    """List the documents."""
    return "a.txt"


@tool(args_schema=FilteredArgs)
def filtered_search(query: str, filters: list | None = None, mode: str = "any") -> str:
    """Search with filters (nested objects, arrays, enums)."""
    return ""


TOOLS = [convert_to_openai_tool(t) for t in (search_docs, list_docs, filtered_search)]
CALL = '<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'


def call(name: str, args: str) -> str:
    return CALL.format(name=name, args=args)


# --- tool_choice as LangChain defines it ------------------------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    (None, ToolChoice("auto")), ("auto", ToolChoice("auto")), ("none", ToolChoice("none")),
    ("any", ToolChoice("required")), ("required", ToolChoice("required")),
    ("list_docs", ToolChoice("required", "list_docs")),
    ({"type": "function", "function": {"name": "search_docs"}}, ToolChoice("required", "search_docs")),
])
def test_tool_choice_forms(given, expected):
    assert normalise_tool_choice(given, TOOLS) == expected


def test_a_tool_choice_naming_no_bound_tool_is_an_error():
    with pytest.raises(ToolChoiceError, match="not auto, any, required, none or a bound tool"):
        normalise_tool_choice("delete_everything", TOOLS)
    with pytest.raises(ToolChoiceError, match="exactly one bound tool"):
        normalise_tool_choice(True, TOOLS)
    assert normalise_tool_choice(True, TOOLS[:1]) == ToolChoice("required", "search_docs")
    with pytest.raises(ToolChoiceError):
        LocalChatModel(generator=object()).bind_tools([search_docs], tool_choice="other")


def test_the_grammar_offers_only_what_the_choice_allows():
    auto = tool_call_grammar(TOOLS, ToolChoice("auto"))
    assert auto.startswith("root ::= call | answer\n") and "answer ::=" in auto
    assert all(f'\\"name\\": \\"{n}\\"' in auto for n in ("search_docs", "list_docs", "filtered_search"))
    required = tool_call_grammar(TOOLS, ToolChoice("required"))
    assert required.startswith("root ::= call\n") and "answer ::=" not in required
    named = tool_call_grammar(TOOLS, ToolChoice("required", "list_docs"))
    assert '\\"list_docs\\"' in named and '\\"search_docs\\"' not in named
    none = tool_call_grammar(TOOLS, ToolChoice("none"))
    assert none.startswith("root ::= answer\n") and "call ::=" not in none


def test_a_constrained_call_is_parsed_and_a_cut_off_one_is_not():
    parsed = parse_constrained_call(call("search_docs", '{"question": "端口\n是多少", "top_k": 3}'))
    assert (parsed.name, parsed.arguments) == ("search_docs", {"question": "端口\n是多少", "top_k": 3})
    assert parse_constrained_call('<tool_call>\n{"name": "search_docs", "arguments": {"question": "端') is None


# --- llama.cpp's grammar engine on the packaged vocabulary (slow: the GGUF is assembled once per session) -----

@pytest.fixture(scope="module")
def matcher(packaged_gguf_path):
    from grammar_matcher import GrammarMatcher

    return GrammarMatcher(packaged_gguf_path)


VALID_CALLS = [
    call("search_docs", '{"question": "星河数据库的端口？"}'),
    call("search_docs", '{"question": "x", "top_k": 3, "passages_only": true}'),
    call("search_docs", '{"question": "引号 \\" 与换行 \\n", "passages_only": false}'),
    call("list_docs", "{}"),
    call("filtered_search", '{"query": "q"}'),
    call("filtered_search", '{"query": "q", "filters": [{"field": "lang", "values": ["zh", "en"]}], "mode": "all"}'),
]
INVALID_CALLS = {
    "unknown tool": call("delete_everything", "{}"),
    "wrong type": call("search_docs", '{"question": 3}'),
    "missing required": call("search_docs", '{"top_k": 3}'),
    "extra key": call("list_docs", '{"force": true}'),
    "not in enum": call("filtered_search", '{"query": "q", "mode": "some"}'),
    "wrong nested type": call("filtered_search", '{"query": "q", "filters": [{"field": "lang", "values": "zh"}]}'),
    "unterminated": '<tool_call>\n{"name": "list_docs", "arguments": {}}',
    "text after the call": call("list_docs", "{}") + "\n然后呢",
    "two calls": call("list_docs", "{}") + "\n" + call("list_docs", "{}"),
    "bare json": '{"name": "list_docs", "arguments": {}}',
    "drifted tag": '<tools>\n{"name": "list_docs", "arguments": {}}\n</tools>',
    "empty": "",
}
ANSWERS = ["星河数据库默认监听 7341 端口 [1]。", "The documents do not say.\n\nSee [2].", "7341"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "required"])
def test_every_bound_tools_schema_is_admitted(matcher, mode):
    grammar = tool_call_grammar(TOOLS, ToolChoice(mode))
    assert matcher.compiles(grammar)
    for text in VALID_CALLS:
        assert matcher.admits(grammar, text), text


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "required", "none"])
def test_other_output_is_rejected(matcher, mode):
    grammar = tool_call_grammar(TOOLS, ToolChoice(mode))
    for label, text in INVALID_CALLS.items():
        assert not matcher.admits(grammar, text), label
    for text in ANSWERS:  # a plain answer only where LangChain lets the model answer
        assert matcher.admits(grammar, text) == (mode != "required"), (mode, text)
    if mode == "none":
        assert not any(matcher.admits(grammar, text) for text in VALID_CALLS)


@pytest.mark.slow
def test_a_named_tool_admits_only_its_own_calls(matcher):
    grammar = tool_call_grammar(TOOLS, ToolChoice("required", "list_docs"))
    assert matcher.admits(grammar, call("list_docs", "{}"))
    assert not matcher.admits(grammar, VALID_CALLS[0]) and not matcher.admits(grammar, ANSWERS[0])


@pytest.mark.slow
def test_the_real_model_decodes_what_each_tool_choice_allows(real_pipeline):
    """The packaged model under the grammar: forced, named and forbidden calls, and the path it reports."""
    model = LocalChatModel(generator=real_pipeline.generator, generation=GenerationSettings(max_new_tokens=80))
    question = [HumanMessage("What is the capital of France?")]
    required = model.bind_tools([search_docs, list_docs], tool_choice="any").invoke(question)
    assert required.response_metadata["tool_call_path"] == "grammar"
    assert len(required.tool_calls) == 1 and required.tool_calls[0]["name"] in ("search_docs", "list_docs")
    named = model.bind_tools([search_docs, list_docs], tool_choice="list_docs").invoke(question)
    assert [(c["name"], c["args"]) for c in named.tool_calls] == [("list_docs", {})]
    forbidden = model.bind_tools([search_docs, list_docs], tool_choice="none").invoke(question)
    assert not forbidden.tool_calls and forbidden.content.strip() and not forbidden.content.startswith("<")
    auto = model.bind_tools([search_docs, list_docs]).invoke(question)
    p_call = auto.response_metadata["call_probability"]
    assert 0.0 <= p_call <= 1.0 and bool(auto.tool_calls) == (p_call >= model.call_threshold)


# --- the chat model's paths, over scripted backends ---------------------------------------------------------

class ScriptedGrammarBackend:
    """A generator that can decode under a grammar: replies with scripted text, recording each grammar."""

    name, n_ctx = "scripted-grammar", 4096

    def __init__(self, *replies: str) -> None:
        self.replies, self.grammars, self.plain_calls = list(replies), [], 0

    def stream(self, messages, settings):
        self.plain_calls += 1
        yield self.replies.pop(0)

    def stream_constrained(self, messages, settings, grammar):
        self.grammars.append(grammar)
        reply = self.replies.pop(0)
        for i in range(0, len(reply), 3):
            yield reply[i:i + 3]


class ScriptedToolServer:
    """A generator whose server does tool calling itself (as the OpenAI-compatible backend's does)."""

    name, n_ctx = "scripted-server", 4096

    def __init__(self, reply: ToolCallReply) -> None:
        self.reply, self.requests = reply, []

    def stream(self, messages, settings):
        yield "unused"

    def complete_with_tools(self, messages, settings, tools, tool_choice):
        self.requests.append((messages, tools, tool_choice))
        return self.reply


def test_under_the_grammar_a_call_is_parsed_and_the_path_named():
    backend = ScriptedGrammarBackend(call("search_docs", '{"question": "端口"}'))
    reply = LocalChatModel(generator=backend).bind_tools([search_docs, list_docs]).invoke("端口是多少？")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("search_docs", {"question": "端口"})]
    assert reply.content == "" and reply.response_metadata["tool_call_path"] == "grammar"
    assert backend.grammars[0].startswith("root ::= call | answer") and backend.plain_calls == 0


def test_under_the_grammar_an_answer_streams_from_its_first_character():
    backend = ScriptedGrammarBackend("文档里没有提到这一点。")
    chunks = list(LocalChatModel(generator=backend).bind_tools([search_docs]).stream("你好"))
    assert chunks[0].content == "文档里"  # shown as soon as it cannot be a call
    merged = sum(chunks[1:], chunks[0])
    assert merged.content == "文档里没有提到这一点。" and not merged.tool_calls
    assert merged.response_metadata["tool_call_path"] == "grammar"


def test_a_call_cut_off_by_the_token_budget_is_reported_not_invented():
    backend = ScriptedGrammarBackend('<tool_call>\n{"name": "search_docs", "arguments": {"question": "很长')
    reply = LocalChatModel(generator=backend).bind_tools([search_docs], tool_choice="any").invoke("q")
    assert not reply.tool_calls and "cut off" in reply.response_metadata["tool_call_error"]


def test_tool_choice_reaches_the_grammar():
    backend = ScriptedGrammarBackend(call("list_docs", "{}"), "好的。")
    model = LocalChatModel(generator=backend)
    assert model.bind_tools([search_docs, list_docs], tool_choice="list_docs").invoke("q").tool_calls
    assert not model.bind_tools([search_docs, list_docs], tool_choice="none").invoke("q").tool_calls
    named, none = backend.grammars
    assert '\\"search_docs\\"' not in named and named.startswith("root ::= call\n")
    assert none.startswith("root ::= answer\n")


def test_unconstrained_the_lenient_parser_recovers_drifted_calls():
    backend = ScriptedGrammarBackend('<tools>\n{"name": "list_docs", "arguments": {}}\n</tools>')
    reply = LocalChatModel(generator=backend, constrained=False).bind_tools([list_docs]).invoke("q")
    assert [c["name"] for c in reply.tool_calls] == ["list_docs"]
    assert reply.response_metadata["tool_call_path"] == "lenient" and not backend.grammars


def test_a_server_with_its_own_tool_calling_gets_tools_and_tool_choice_through():
    server = ScriptedToolServer(ToolCallReply("", [{"id": "call_7", "name": "search_docs",
                                                    "arguments": '{"question": "端口"}'}]))
    model = LocalChatModel(generator=server).bind_tools([search_docs, list_docs], tool_choice="search_docs")
    history = [HumanMessage("端口？"), AIMessage("", tool_calls=[{"name": "list_docs", "args": {}, "id": "c1"}]),
               ToolMessage("a.txt", tool_call_id="c1")]
    reply = model.invoke(history)
    assert reply.tool_calls == [{"name": "search_docs", "args": {"question": "端口"}, "id": "call_7",
                                 "type": "tool_call"}]
    assert reply.response_metadata["tool_call_path"] == "native"
    messages, tools, choice = server.requests[0]
    assert choice == {"type": "function", "function": {"name": "search_docs"}}
    assert [t["function"]["name"] for t in tools] == ["search_docs", "list_docs"]
    # Tool calls and results travel as structured OpenAI messages, not as template text.
    assert messages[1]["tool_calls"][0]["function"]["name"] == "list_docs"
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "a.txt"}


class ProbingGrammarBackend(ScriptedGrammarBackend):
    """A grammar backend that also reports how likely the reply begins like a call."""

    def __init__(self, p_call: float, *replies: str) -> None:
        super().__init__(*replies)
        self.p_call, self.asked = p_call, []

    def leading_char_probability(self, messages, chars):
        self.asked.append(chars)
        return self.p_call


@pytest.mark.parametrize("p_call, expected_root", [(0.7, "root ::= call\n"), (0.3, "root ::= answer\n")])
def test_under_auto_the_models_own_branch_probability_decides(p_call, expected_root):
    reply = call("search_docs", '{"question": "q"}') if p_call > 0.5 else "你好！"
    backend = ProbingGrammarBackend(p_call, reply)
    message = LocalChatModel(generator=backend, call_threshold=0.5).bind_tools([search_docs]).invoke("q")
    assert backend.grammars[0].startswith(expected_root) and backend.asked == ["<{`"]
    assert bool(message.tool_calls) == (p_call > 0.5)
    assert message.response_metadata["call_probability"] == p_call


def test_explicit_choices_and_no_threshold_skip_the_probe():
    backend = ProbingGrammarBackend(0.9, call("list_docs", "{}"), "答案。")
    LocalChatModel(generator=backend).bind_tools([list_docs], tool_choice="any").invoke("q")
    LocalChatModel(generator=backend, call_threshold=None).bind_tools([list_docs]).invoke("q")
    assert backend.asked == [] and backend.grammars[1].startswith("root ::= call | answer")


def test_a_turn_after_a_tool_result_is_the_grammars_greedy_choice_not_the_thresholds():
    # p_call 0.9 would force another call; after a result the model's greedy choice under "auto" decides (here an
    # answer), so an answered search is not searched again until the step limit.
    backend = ProbingGrammarBackend(0.9, "答案是 42。")
    history = [HumanMessage("q"), AIMessage("", tool_calls=[{"name": "search_docs", "args": {"question": "q"},
                                                            "id": "c1", "type": "tool_call"}]),
               ToolMessage("Answer: 42", tool_call_id="c1", name="search_docs")]
    message = LocalChatModel(generator=backend, call_threshold=0.5).bind_tools([search_docs]).invoke(history)
    assert backend.asked == [] and backend.grammars[0].startswith("root ::= call | answer")
    assert message.content == "答案是 42。" and message.response_metadata["call_decision"].startswith("greedy")
