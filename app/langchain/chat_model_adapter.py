"""A LangChain chat model over the project's own generation backends, with tool calling.

``ChatHuggingFace`` cannot drive a tool-calling agent over a local model (tool calls are never parsed and
ToolMessages raise). ``LocalChatModel`` renders tools, tool calls and tool results in the model's own tool format
(app/langchain/tool_call_format.py) and streams through the ``Generator``; with tools bound, llama.cpp decodes each
turn under a grammar admitting only what ``tool_choice`` allows (app/langchain/tool_call_grammar.py), an
OpenAI-compatible server gets ``tools`` and ``tool_choice`` itself, and other backends' text is parsed leniently.
So ``langchain.agents.create_agent`` works with the local LLM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

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
    convert_to_openai_messages,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from app.answer.answer_pipeline import AskOptions
from app.config import GenerationSettings, Settings
from app.generation.base import GrammarGenerator, ToolCallingGenerator
from app.langchain.tool_call_format import (
    ChatTurn,
    ParsedReply,
    ToolCall,
    new_call_id,
    parse_reply,
    safe_prefix_length,
    to_plain_messages,
)
from app.langchain.tool_call_grammar import (
    CALL_START_CHARS,
    ToolChoice,
    normalise_tool_choice,
    parse_constrained_call,
    tool_call_grammar,
    tool_names,
)
from app.langchain.tool_result_ending import EndingKind, tool_result_ending
from app.wiring import build_generator
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


@dataclass
class _Progress:
    """What a streamed reply has produced so far, and how much of it was shown."""

    text: str = ""
    shown: int = 0


def _stream_visible(pieces: Iterator[str], stop: list[str] | None, run_manager: CallbackManagerForLLMRun | None,
                    visible: Callable[[str], int], progress: _Progress) -> Iterator[ChatGenerationChunk]:
    """Stream the part of the reply that ``visible`` allows to be shown while it is generated (text that may be
    the start of a tool call is held back); ``progress`` keeps the whole text for parsing at the end."""
    try:
        for piece in pieces:
            progress.text, stopped = _cut_at_stop(progress.text + piece, stop)
            end = visible(progress.text)
            if end > progress.shown:
                delta = progress.text[progress.shown:end]
                progress.shown = end
                if run_manager:
                    run_manager.on_llm_new_token(delta)
                yield ChatGenerationChunk(message=AIMessageChunk(content=delta))
            if stopped:
                break
    finally:
        close = getattr(pieces, "close", None)
        if close:
            close()


def _tail(progress: _Progress, run_manager: CallbackManagerForLLMRun | None,
          metadata: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
    """The rest of a reply that held no tool call."""
    rest = progress.text[progress.shown:]
    if rest and run_manager:
        run_manager.on_llm_new_token(rest)
    yield ChatGenerationChunk(message=AIMessageChunk(content=rest, response_metadata=metadata))


ToolCallPath = Literal["grammar", "native", "lenient"]
# Who wrote a reply that is not a tool call (response_metadata["answer_path"]): the model, or the adapter passing
# on a docqa tool's refusal (end_on_tool_refusal) or answer (end_on_tool_answer).
AnswerPath = Literal["model"] | EndingKind


class LocalChatModel(BaseChatModel):
    """Chat model over a project ``Generator`` (llama.cpp / transformers / OpenAI-compatible backend).

    With tools bound, each turn takes one of three paths, named in the reply's
    ``response_metadata["tool_call_path"]``: "grammar" (llama.cpp decodes under a grammar that admits only what
    ``tool_choice`` allows: a well-formed call of a bound tool matching its schema, or a plain answer), "native"
    (an OpenAI-compatible server receives ``tools`` and ``tool_choice`` and makes the calls itself) or "lenient"
    (a backend that cannot be constrained, e.g. transformers: the text is parsed by the lenient parser, so a call
    the model did not write cannot be forced and one it wrote off format is still recovered).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Any  # app.generation.base.Generator (a Protocol, so not a pydantic type)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    # Use the grammar (or the server's tool calling) where the backend offers it; False measures the lenient
    # parser alone on any backend (bench/agent_tool_calls.py compares both).
    constrained: bool = True
    # Under tool_choice="auto" with the grammar: call a tool when the model puts at least this much probability on
    # beginning a call (its first visible character "<", "{" or "`", in or out of format) rather than an answer,
    # summed over every token that begins one. None: the greedy first token decides — under the grammar the
    # bundled model then called on 15 % of first turns (it began "NOT FOUND" or "要回答…" instead of a drifted
    # call). 0.12: with AGENT_INSTRUCTIONS, the geometric mean of the tuning half's 0.9-quantile question (the
    # second lowest of 17, 0.18) and the highest small-talk message (0.084) of bench/questions/agent_qa.jsonl's
    # probe (bench/RESULTS_AGENT.md): >= 90 % of the tuning half's first turns call, no small talk does.
    call_threshold: float | None = Field(default=0.12, ge=0.0, le=1.0)
    # With tools bound: when every tool result since the model's last turn is a docqa refusal (read from the
    # result's structured part, app/langchain/tool_result_ending.py), the reply is that refusal, without asking
    # the model (response_metadata["answer_path"] = "tool_refusal"). The bundled model, given the refusal, still
    # answered from its own knowledge (bench/RESULTS_AGENT.md); a refusal is docqa's verdict on the user's
    # documents, not a hint. Any other tool's result, or an error, leaves the reply to the model.
    end_on_tool_refusal: bool = True
    # With only docqa's tools bound: when every tool result since the model's last turn is the same docqa answer
    # (read the same way), the reply is that answer with its [n] sources, without asking the model
    # (answer_path = "tool_answer"; LangChain's precedent: a tool's return_direct). The answer is already checked
    # against its sources; the bundled 1.5B model's paraphrase of it loses that grounding: after an answered search
    # it replied with an English paraphrase of the wrong source, or "I'm sorry, but I can't assist with that.", on
    # 2 of the 10 answered report-half questions (bench/RESULTS_AGENT.md, round 2). With other tools bound (the
    # model may have more to do with the answer), or answers that differ, the model replies.
    end_on_tool_answer: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, **generation: Any) -> LocalChatModel:
        """The configured LLM (loaded once per process), with decoding overrides such as ``max_new_tokens=256``."""
        return cls(generator=build_generator(settings), generation=settings.generation.replace(**generation))

    @property
    def _llm_type(self) -> str:
        return "docqa-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": getattr(self.generator, "name", "?"), **self.generation.model_dump()}

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: Any = None, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools`` with LangChain's ``tool_choice`` ("auto" or None, "any"/"required"/True, a tool name or
        ``{"type": "function", "function": {"name": …}}``, "none"); an unknown choice is an error here."""
        schemas = [convert_to_openai_tool(t) for t in tools]
        normalise_tool_choice(tool_choice, schemas)
        return self.bind(tools=schemas, tool_choice=tool_choice, **kwargs)

    def _plain_messages(self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None) -> list[dict[str, str]]:
        return to_plain_messages(to_turns(messages), tools)

    def _path(self, tools: list[dict[str, Any]] | None) -> ToolCallPath | None:
        if not tools:
            return None
        if self.constrained and isinstance(self.generator, ToolCallingGenerator):
            return "native"
        if self.constrained and isinstance(self.generator, GrammarGenerator):
            return "grammar"
        return "lenient"

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        tools: list[dict[str, Any]] | None = kwargs.get("tools")
        path = self._path(tools)
        if path is None:
            progress = _Progress()
            yield from _stream_visible(self.generator.stream(self._plain_messages(messages, None), self.generation),
                                       stop, run_manager, len, progress)
            yield from _tail(progress, run_manager, {})
            return
        choice = normalise_tool_choice(kwargs.get("tool_choice"), tools)
        ending = tool_result_ending(messages, tool_names(tools), on_refusal=self.end_on_tool_refusal,
                                    on_answer=self.end_on_tool_answer)
        if ending is not None:
            reply = ending.reply
            if run_manager:
                run_manager.on_llm_new_token(reply)
            tool_key = "refusing_tool" if ending.kind == "tool_refusal" else "answering_tool"
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=reply, response_metadata={"tool_call_path": path, "answer_path": ending.kind,
                                                  tool_key: ending.tool, "sources": list(ending.result.sources)},
                chunk_position="last"))
            return
        if path == "native":
            yield self._native_turn(messages, tools, choice)
            return
        plain = self._plain_messages(messages, tools)
        metadata: dict[str, Any] = {"tool_call_path": path}
        if path == "grammar":
            choice = self._decided(choice, messages, plain, metadata)
        names = set(tool_names(tools)) if choice.may_call else None
        if path == "grammar":
            pieces = self.generator.stream_constrained(plain, self.generation, tool_call_grammar(tools, choice))
            # Under the grammar a reply is a call exactly when it starts with "<": an answer streams at once.
            visible: Callable[[str], int] = lambda text: 0 if text.lstrip()[:1] in ("", "<") else len(text)
        else:
            pieces = self.generator.stream(plain, self.generation)
            visible = safe_prefix_length if names else len
        progress = _Progress()
        yield from _stream_visible(pieces, stop, run_manager, visible, progress)
        text, shown = progress.text, progress.shown
        if path == "grammar":
            call = parse_constrained_call(text) if names and text.lstrip().startswith("<") else None
            reply = ParsedReply("" if call else text, [call] if call else [])
            if names and call is None and text.lstrip().startswith("<"):
                # Only a call the token budget cut off can start with "<" and not parse.
                metadata["tool_call_error"] = "the tool call was cut off before it was complete (max_new_tokens)"
        else:
            reply = parse_reply(text, names) if names else ParsedReply(text, [])
        if not reply.tool_calls:
            yield from _tail(progress, run_manager, {**metadata, "answer_path": "model"})
            return
        # Content before the call that was held back is emitted now; the call itself becomes tool_call_chunks.
        rest = reply.content[shown:] if reply.content.startswith(text[:shown]) else ""
        chunks = [tool_call_chunk(name=c.name, args=json.dumps(c.arguments, ensure_ascii=False), id=c.id, index=i)
                  for i, c in enumerate(reply.tool_calls)]
        yield ChatGenerationChunk(message=AIMessageChunk(content=rest, tool_call_chunks=chunks,
                                                         response_metadata=metadata, chunk_position="last"))

    def _decided(self, choice: ToolChoice, messages: list[BaseMessage], plain: list[dict[str, str]],
                 metadata: dict[str, Any]) -> ToolChoice:
        """Under "auto", the branch the model prefers by probability mass (``call_threshold``), as a choice the
        grammar then holds it to: any bound tool, or an answer. Other choices are already decided. A turn that
        follows a tool result is left to the grammar's greedy choice: the threshold was chosen on first turns, and
        applied after answered searches it made the bundled model search again and again until the step limit
        (bench/RESULTS_AGENT.md)."""
        if choice.mode != "auto" or self.call_threshold is None or not hasattr(self.generator,
                                                                              "leading_char_probability"):
            return choice
        if messages and isinstance(messages[-1], ToolMessage):
            metadata["call_decision"] = "greedy (after a tool result)"
            return choice
        p_call = self.generator.leading_char_probability(plain, CALL_START_CHARS)
        metadata["call_probability"] = round(p_call, 4)
        metadata["call_decision"] = "threshold"
        return ToolChoice("required" if p_call >= self.call_threshold else "none")

    def _native_turn(self, messages: list[BaseMessage], tools: list[dict[str, Any]],
                     choice: ToolChoice) -> ChatGenerationChunk:
        """One turn through the server's own tool calling (``tools`` and ``tool_choice`` passed through)."""
        wire_choice: str | dict[str, Any] = (
            {"type": "function", "function": {"name": choice.tool}} if choice.tool else choice.mode)
        reply = self.generator.complete_with_tools(convert_to_openai_messages(list(messages)), self.generation,
                                                   tools, wire_choice)
        chunks = [tool_call_chunk(name=c["name"], args=c["arguments"], id=c["id"] or new_call_id(), index=i)
                  for i, c in enumerate(reply.tool_calls)]
        return ChatGenerationChunk(message=AIMessageChunk(content=reply.content, tool_call_chunks=chunks,
                                                          response_metadata={"tool_call_path": "native", **(
                                                              {} if chunks else {"answer_path": "model"})},
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
