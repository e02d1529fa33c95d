"""A LangChain chat model over the project's own generation backends, with tool calling.

``ChatHuggingFace`` cannot drive a tool-calling agent over a local model (tool calls are never parsed and
ToolMessages raise). ``LocalChatModel`` renders tools, tool calls and tool results in the model's own tool format
(app/tool_call_format.py), streams through ``Generator.stream`` and parses ``<tool_call>`` blocks into
``AIMessage.tool_calls``, so ``langchain.agents.create_agent`` works with the local LLM.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from app.config import GenerationSettings
from app.tool_call_format import (
    ChatTurn,
    ToolCall,
    parse_reply,
    safe_prefix_length,
    to_plain_messages,
)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    # Content blocks ([{"type": "text", "text": ...}, ...]): keep the text parts.
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def to_turns(messages: Sequence[BaseMessage]) -> list[ChatTurn]:
    """LangChain messages as the project's chat turns (tool calls and tool results kept)."""
    turns = []
    for message in messages:
        if isinstance(message, SystemMessage):
            turns.append(ChatTurn("system", _text(message.content)))
        elif isinstance(message, HumanMessage):
            turns.append(ChatTurn("user", _text(message.content)))
        elif isinstance(message, AIMessage):
            calls = [ToolCall(c["name"], c["args"], c.get("id") or "") for c in message.tool_calls]
            turns.append(ChatTurn("assistant", _text(message.content), calls))
        elif isinstance(message, ToolMessage):
            turns.append(ChatTurn("tool", _text(message.content)))
        else:
            raise ValueError(f"LocalChatModel cannot send a {type(message).__name__} message to the model")
    return turns


def _cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    for word in stop or []:
        if word and word in text:
            return text[:text.index(word)], True
    return text, False


class LocalChatModel(BaseChatModel):
    """Chat model over a project ``Generator`` (llama.cpp / transformers / OpenAI-compatible backend)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Any  # app.generation.base.Generator (a Protocol, so not a pydantic type)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)

    @property
    def _llm_type(self) -> str:
        return "docqa-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": getattr(self.generator, "name", "?"), **self.generation.model_dump()}

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: str | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        # tool_choice is accepted for API compatibility; a local model is only told which tools exist.
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _plain_messages(self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None) -> list[dict[str, str]]:
        return to_plain_messages(to_turns(messages), tools)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        tools: list[dict[str, Any]] | None = kwargs.get("tools")
        names = {t["function"]["name"] for t in tools} if tools else None
        text, shown = "", 0
        pieces = self.generator.stream(self._plain_messages(messages, tools), self.generation)
        try:
            for piece in pieces:
                text, stopped = _cut_at_stop(text + piece, stop)
                # Hold back anything that may be (the start of) a tool call; it is parsed once generation ends.
                visible = safe_prefix_length(text) if names else len(text)
                if visible > shown:
                    delta = text[shown:visible]
                    shown = visible
                    if run_manager:
                        run_manager.on_llm_new_token(delta)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
                if stopped:
                    break
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()
        reply = parse_reply(text, names) if names else None
        if reply is None or not reply.tool_calls:
            if len(text) > shown:
                if run_manager:
                    run_manager.on_llm_new_token(text[shown:])
                yield ChatGenerationChunk(message=AIMessageChunk(content=text[shown:]))
            return
        # Content before the call that was held back is emitted now; the call itself becomes tool_call_chunks.
        rest = reply.content[shown:] if reply.content.startswith(text[:shown]) else ""
        chunks = [tool_call_chunk(name=c.name, args=json.dumps(c.arguments, ensure_ascii=False), id=c.id, index=i)
                  for i, c in enumerate(reply.tool_calls)]
        yield ChatGenerationChunk(message=AIMessageChunk(content=rest, tool_call_chunks=chunks,
                                                         chunk_position="last"))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
