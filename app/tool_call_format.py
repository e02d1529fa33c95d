"""Tool calling in the Qwen2.5 / Hermes text format, over plain role/content chat messages.

The project's generators take plain ``{"role", "content"}`` messages and apply the model's own chat template. Qwen2.5's
template renders tools, assistant tool calls and tool results as text inside ordinary system / assistant / user
turns; this module produces exactly that text (checked against the packaged model's template in
tests/test_agent_tool_format.py), so tool calling works through any backend without the backend knowing about tools,
and parses the ``<tool_call>{json}</tool_call>`` blocks the model writes back.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

# What Qwen2.5's template puts in the system turn when tools are given but the conversation has no system message.
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_TOOLS_HEADER = ("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                 "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
_TOOLS_FOOTER = ("\n</tools>\n\nFor each function call, return a json object with function name and arguments "
                 "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
                 "{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>")
_TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_CODE_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")


@dataclass
class ChatTurn:
    """One message of a conversation in the project's own terms (before the chat template)."""

    role: str  # system, user, assistant, tool
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass
class ParsedReply:
    content: str
    tool_calls: list[ToolCall]
    # Text of <tool_call> blocks that were not valid calls (kept so the caller can report them).
    invalid: list[str] = field(default_factory=list)


def _tojson(value: Any) -> str:
    # Same as the chat template's tojson filter (transformers and llama.cpp): no ASCII escaping.
    return json.dumps(value, ensure_ascii=False)


def tools_system_text(system: str | None, tools: list[dict[str, Any]]) -> str:
    """The system turn text Qwen2.5's template renders for ``tools`` (OpenAI function schemas)."""
    body = "".join("\n" + _tojson(tool) for tool in tools)
    return (system if system is not None else DEFAULT_SYSTEM) + _TOOLS_HEADER + body + _TOOLS_FOOTER


def render_tool_call(call: ToolCall) -> str:
    return f'<tool_call>\n{{"name": "{call.name}", "arguments": {_tojson(call.arguments)}}}\n</tool_call>'


def to_plain_messages(turns: list[ChatTurn], tools: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Plain role/content messages whose rendering by Qwen2.5's template equals the template's own rendering of
    ``turns`` with ``tools``: tool schemas join the system turn, tool calls join the assistant text, and runs of
    tool results become one user turn of ``<tool_response>`` blocks."""
    out: list[dict[str, str]] = []
    rest = turns
    if tools:
        system = turns[0].content if turns and turns[0].role == "system" else None
        out.append({"role": "system", "content": tools_system_text(system, tools)})
        rest = turns[1:] if system is not None else turns
    for turn in rest:
        if turn.role == "tool":
            block = f"<tool_response>\n{turn.content}\n</tool_response>"
            if out and out[-1]["role"] == "tool":
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "tool", "content": block})
        elif turn.role == "assistant" and turn.tool_calls:
            calls = "\n".join(render_tool_call(c) for c in turn.tool_calls)
            out.append({"role": "assistant", "content": f"{turn.content}\n{calls}" if turn.content else calls})
        else:
            out.append({"role": turn.role, "content": turn.content})
    return [{"role": "user" if m["role"] == "tool" else m["role"], "content": m["content"]} for m in out]


def _as_call(text: str, known: set[str] | None) -> ToolCall | None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    if known is not None and obj["name"] not in known:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    return ToolCall(obj["name"], args) if isinstance(args, dict) else None


def parse_reply(text: str, tool_names: set[str] | None = None) -> ParsedReply:
    """Split model output into plain content and tool calls.

    ``<tool_call>`` blocks are parsed (an unterminated last block too: generation may stop at the end token before
    the closing tag). A reply that is nothing but one JSON call, bare or in a code fence, naming a known tool also
    counts: small models sometimes drop the tags.
    """
    if TOOL_CALL_OPEN in text:
        calls, invalid = [], []
        for block in _TOOL_CALL_BLOCK.findall(text):
            call = _as_call(block, tool_names)
            if call is None:
                invalid.append(block)
            else:
                calls.append(call)
        content = text[:text.index(TOOL_CALL_OPEN)].strip()
        return ParsedReply(content, calls, invalid)
    stripped = text.strip()
    fenced = _CODE_FENCE.match(stripped)
    candidate = fenced.group(1) if fenced else stripped
    if tool_names and candidate.startswith("{"):
        call = _as_call(candidate, tool_names)
        if call is not None:
            return ParsedReply("", [call])
    return ParsedReply(text, [])


def safe_prefix_length(text: str) -> int:
    """How much of streamed ``text`` can be shown as content now: everything before a ``<tool_call>`` tag, holding
    back a tail that might be the start of one."""
    if TOOL_CALL_OPEN in text:
        return text.index(TOOL_CALL_OPEN)
    for keep in range(min(len(TOOL_CALL_OPEN) - 1, len(text)), 0, -1):
        if TOOL_CALL_OPEN.startswith(text[-keep:]):
            return len(text) - keep
    return len(text)
