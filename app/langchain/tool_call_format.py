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
from typing import Any, Iterator

# What Qwen2.5's template puts in the system turn when tools are given but the conversation has no system message.
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_TOOLS_HEADER = ("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                 "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
_TOOLS_FOOTER = ("\n</tools>\n\nFor each function call, return a json object with function name and arguments "
                 "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
                 "{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>")
# Text that may begin a tool call, in the template's format or in the ways small models drift from it.
_CALL_MARKERS = (TOOL_CALL_OPEN, "<tools>", "```", "{")
_CALL_STARTS = "<{`"
_LONGEST_MARKER = max(len(m) for m in _CALL_MARKERS)
_TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
# What may precede a drifted call: an opening tag, a code fence, extra braces.
_LEADING_TAG_TAIL = re.compile(r"(?:(?:<tool_call>|<tools>|```(?:json)?|\{)\s*)+$")


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=new_call_id)


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


def inert(text: str) -> str:
    """User and tool text with chat-template control markers (``<|im_end|>``…) defused: the generators tokenise
    prompts with control tokens enabled, so a document quoted in a tool result must not be able to end a turn."""
    return text.replace("<|", "<\uff5c").replace("|>", "\uff5c>")


def to_plain_messages(turns: list[ChatTurn], tools: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Plain role/content messages whose rendering by Qwen2.5's template equals the template's own rendering of
    ``turns`` with ``tools``: tool schemas join the system turn, tool calls join the assistant text, and runs of
    tool results become one user turn of ``<tool_response>`` blocks. User and tool text is made ``inert``."""
    out: list[dict[str, str]] = []
    rest = turns
    if tools:
        system = turns[0].content if turns and turns[0].role == "system" else None
        out.append({"role": "system", "content": tools_system_text(system, tools)})
        rest = turns[1:] if system is not None else turns
    for turn in rest:
        if turn.role == "tool":
            block = f"<tool_response>\n{inert(turn.content)}\n</tool_response>"
            if out and out[-1]["role"] == "tool":
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "tool", "content": block})
        elif turn.role == "assistant" and turn.tool_calls:
            calls = "\n".join(render_tool_call(c) for c in turn.tool_calls)
            out.append({"role": "assistant", "content": f"{turn.content}\n{calls}" if turn.content else calls})
        else:
            out.append({"role": turn.role, "content": inert(turn.content) if turn.role == "user" else turn.content})
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


def _json_objects(text: str) -> Iterator[tuple[int, int, Any]]:
    """Every top-level JSON object in ``text`` as (start, end, value), scanning left to right."""
    decoder = json.JSONDecoder()
    pos = text.find("{")
    while pos >= 0:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            pos = text.find("{", pos + 1)
            continue
        yield pos, end, value
        pos = text.find("{", end)


def parse_reply(text: str, tool_names: set[str] | None = None) -> ParsedReply:
    """Split model output into plain content and tool calls.

    ``<tool_call>`` blocks are parsed (an unterminated last block too: generation may stop at the end token before
    the closing tag). Small models also drift from the format (``<tools>`` tags, the template's doubled braces
    ``{{...}}``, a bare or fenced JSON object), so when tool names are known any JSON object naming one of them
    with object arguments counts as a call; the content is the text before the first call.
    """
    calls: list[ToolCall] = []
    invalid: list[str] = []
    first = len(text)
    if TOOL_CALL_OPEN in text:
        first = text.index(TOOL_CALL_OPEN)
        for block in _TOOL_CALL_BLOCK.findall(text):
            call = _as_call(block, tool_names)
            if call is not None:
                calls.append(call)
            else:
                invalid.append(block)
    if not calls and tool_names:
        for start, end, value in _json_objects(text):
            call = _as_call(json.dumps(value), tool_names) if isinstance(value, dict) else None
            if call is not None:
                calls.append(call)
                first = min(first, start)
        if calls:
            invalid = []
    if not calls and not invalid:
        return ParsedReply(text, [])
    content = _LEADING_TAG_TAIL.sub("", text[:first]).strip()
    return ParsedReply(content, calls, invalid)


def safe_prefix_length(text: str) -> int:
    """How much of streamed ``text`` can be shown as content now, while tools are bound.

    A reply that opens with ``<``, ``{`` or a code fence may be a tool call (in or out of format) and is held back
    whole; otherwise everything before the first possible call start is shown, holding back a tail that might
    begin one.
    """
    stripped = text.lstrip()
    if not stripped or stripped[0] in _CALL_STARTS:
        return 0
    cut = min((i for i in (text.find(m) for m in _CALL_MARKERS) if i >= 0), default=len(text))
    for keep in range(min(_LONGEST_MARKER - 1, cut), 0, -1):
        if any(m.startswith(text[cut - keep:cut]) for m in _CALL_MARKERS):
            return cut - keep
    return cut
