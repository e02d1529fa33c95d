"""A LangChain chat model over the project's own generation backends, with tool calling.

``ChatHuggingFace`` cannot drive a tool-calling agent over a local model (tool calls are never parsed and
ToolMessages raise). ``LocalChatModel`` renders tools, tool calls and tool results in the model's own tool format
(app/langchain/tool_call_format.py), streams through ``Generator.stream`` and parses ``<tool_call>`` blocks into
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
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from app.answer.answer_pipeline import AskOptions
from app.config import GenerationSettings
from app.langchain.tool_call_format import (
    ChatTurn,
    ToolCall,
    parse_reply,
    safe_prefix_length,
    to_plain_messages,
)
from prompts.conversation import Turn


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


def messages_to_conversation(messages: Sequence[BaseMessage]) -> tuple[list[Turn], str]:
    """LangChain messages as (the conversation so far, the new question): each human message followed by an AI
    reply is one earlier turn; the last human message is the question. System messages, tool calls and tool
    results are not part of a document conversation and are left out."""
    pending: str | None = None
    turns: list[Turn] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            pending = _text(message.content)
        elif isinstance(message, AIMessage) and pending is not None and not message.tool_calls:
            turns.append(Turn(pending, _text(message.content)))
            pending = None
    if pending is None:
        raise ValueError("the conversation must end with a human message (the question)")
    return turns, pending


class DocumentChatModel(BaseChatModel):
    """A chat model that answers from the documents: the last human message is answered by the grounded pipeline
    in the context of the earlier turns (a follow-up is rewritten into a standalone question first), so
    ``prompt | DocumentChatModel(pipeline=…)`` or ``model.invoke([human, ai, human])`` is a conversational RAG
    chain. The reply's ``response_metadata`` carries the standalone question, refusal and cited sources."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any  # app.answer.answer_pipeline.AnswerPipeline (from app.wiring.build_pipeline)

    @property
    def _llm_type(self) -> str:
        return "docqa-documents"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        history, question = messages_to_conversation(messages)
        answer = self.pipeline.answer(question, AskOptions(history=history))
        metadata = {"standalone_question": answer.standalone_question, "follow_up": answer.follow_up,
                    "refused": answer.refused, "refusal_reason": answer.refusal_reason,
                    "sources": [{"number": c.number, "source": c.passage.chunk.source, "page": c.passage.chunk.page,
                                 "text": c.quoted_text} for c in answer.citations]}
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=answer.text,
                                                                        response_metadata=metadata))])
