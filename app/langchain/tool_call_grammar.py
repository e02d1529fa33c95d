"""GBNF grammars for constrained tool calls: a model turn that can only be what ``tool_choice`` allows.

The reply is written in the template's own tool-call format (app/langchain/tool_call_format.py)::

    <tool_call>
    {"name": "<one bound tool>", "arguments": <an object matching that tool's JSON schema>}
    </tool_call>

or, where LangChain's ``tool_choice`` lets the model answer, plain text that cannot begin like a call. Each tool's
argument grammar is built by llama-cpp-python's JSON-schema converter (the port of llama.cpp's
json-schema-to-grammar), one converter for all tools so their shared rules (strings, numbers, spacing) are written
once. ``tool_choice`` follows LangChain's ``bind_tools``: "auto" (call a tool or answer), "any"/"required"/True
(call one of the tools), a tool's name or ``{"type": "function", "function": {"name": …}}`` (call that tool), "none"
(answer without a call).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from app.langchain.tool_call_format import ToolCall

# How a reply that is (or drifts into) a call begins: "<" (the call tag), "{" (bare JSON), "`" (a code fence). Under
# the grammar a free-text answer may not start with one of them, nor with white space, so a reply starting with "<"
# is a call and every call is valid.
CALL_START_CHARS = "<{`"
_ANSWER_RULE = f"answer ::= [^{CALL_START_CHARS} \\t\\r\\n] [^\\x00]*"
_CALL_TEXT = re.compile(r"\s*<tool_call>\n(\{.*\})\n</tool_call>\s*", re.DOTALL)

Mode = Literal["auto", "required", "none"]


@dataclass(frozen=True)
class ToolChoice:
    """``tool_choice`` made explicit: ``mode`` and, for a named tool, the only tool that may be called."""

    mode: Mode
    tool: str | None = None

    @property
    def may_call(self) -> bool:
        return self.mode != "none"

    @property
    def may_answer(self) -> bool:
        return self.mode in ("auto", "none")


class ToolChoiceError(ValueError):
    """``tool_choice`` names no bound tool, or is not a form LangChain defines."""


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def normalise_tool_choice(tool_choice: Any, tools: list[dict[str, Any]]) -> ToolChoice:
    """LangChain's ``tool_choice`` forms as a ``ToolChoice`` (None means "auto", as with OpenAI)."""
    names = tool_names(tools)
    if tool_choice is None or tool_choice == "auto":
        return ToolChoice("auto")
    if tool_choice == "none":
        return ToolChoice("none")
    if tool_choice in ("any", "required"):
        return ToolChoice("required")
    if tool_choice is True:
        if len(names) != 1:
            raise ToolChoiceError(f"tool_choice=True needs exactly one bound tool, got {len(names)}")
        return ToolChoice("required", names[0])
    if isinstance(tool_choice, dict):
        tool_choice = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
    if isinstance(tool_choice, str) and tool_choice in names:
        return ToolChoice("required", tool_choice)
    raise ToolChoiceError(f"tool_choice {tool_choice!r} is not auto, any, required, none or a bound tool "
                          f"({', '.join(names) or 'none bound'})")


def _literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return json.dumps(text, ensure_ascii=False)


def _arguments_schema(tool: dict[str, Any]) -> dict[str, Any]:
    schema = dict(tool["function"].get("parameters") or {})
    # A tool without parameters still takes an (empty) arguments object.
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def tool_call_grammar(tools: list[dict[str, Any]], choice: ToolChoice) -> str:
    """A GBNF grammar (root rule ``root``) admitting exactly the replies ``choice`` allows over ``tools``
    (OpenAI function schemas, as ``convert_to_openai_tool`` gives them)."""
    from llama_cpp.llama_grammar import SchemaConverter

    if not tools:
        raise ToolChoiceError("a tool-call grammar needs at least one bound tool")
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    calls = []
    for index, tool in enumerate(tools):
        name = tool["function"]["name"]
        if choice.tool is not None and name != choice.tool:
            continue
        schema = converter.resolve_refs(_arguments_schema(tool), f"tool-{index}")
        args_rule = converter.visit(schema, f"tool-{index}-args")
        opening = _literal(f'<tool_call>\n{{"name": "{name}", "arguments": ')
        calls.append(f"call-{index} ::= {opening} {args_rule} {_literal('}' + chr(10) + '</tool_call>')}")
    rules = [converter.format_grammar()]
    if choice.may_call:
        rules += calls
        rules.append("call ::= " + " | ".join(c.split(" ::= ")[0] for c in calls))
    if choice.may_answer:
        rules.append(_ANSWER_RULE)
    root = {"auto": "call | answer", "required": "call", "none": "answer"}[choice.mode]
    # The converter names no rule "root" here (every schema is visited under its own name), so ours is the root.
    return f"root ::= {root}\n" + "\n".join(rules) + "\n"


def parse_constrained_call(text: str) -> ToolCall | None:
    """The call in a reply decoded under ``tool_call_grammar``; None when the reply is not one (a call cut off by
    the token budget). The grammar lets strings hold raw control characters, hence ``strict=False``."""
    match = _CALL_TEXT.fullmatch(text)
    if match is None:
        return None
    try:
        value = json.loads(match.group(1), strict=False)
    except json.JSONDecodeError:
        return None
    return ToolCall(value["name"], value["arguments"])
