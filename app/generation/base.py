"""The Generator protocol every LLM backend implements, and where a configured model's files are."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from app.generation.packaged_model import packaged_model_path
from app.generation.settings import PACKAGED_LLM, GenerationSettings

Message = dict[str, str]


class GenerationError(RuntimeError):
    """A model could not be loaded or failed while generating (the message names the model and the problem)."""


class Generator(Protocol):
    name: str
    # Context window in tokens (prompt + answer).
    n_ctx: int

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        """Apply the model's chat template to ``messages`` and yield the answer text piece by piece, decoding
        with the temperature / top-p / top-k / penalties / max_new_tokens of ``settings``."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the model's own tokenizer (no special tokens added)."""
        ...

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the full prompt after the chat template (with the generation prompt) is applied."""
        ...


def resolve_model(settings: GenerationSettings, models_dir: Path) -> tuple[str, str]:
    """(model path or name, gguf file name or "") for the configured model; the packaged LLM is assembled
    under ``models_dir`` on first use."""
    if settings.model == PACKAGED_LLM:
        path = packaged_model_path(models_dir)
        return str(path.parent), path.name
    return settings.model, settings.gguf_file


@dataclass
class ToolCallReply:
    """A server's reply to a chat request with tools: its text and the calls it made (arguments as JSON text)."""

    content: str
    tool_calls: list[dict[str, str]] = field(default_factory=list)  # {"id", "name", "arguments"}


@runtime_checkable
class GrammarGenerator(Protocol):
    """A generator that can decode under a grammar (llama.cpp). It may also offer
    ``leading_char_probability(messages, chars)``, which the chat model uses to let the model choose between a
    tool call and an answer under ``tool_choice="auto"`` (app/langchain/chat_model_adapter.py)."""

    def stream_constrained(self, messages: list[Message], settings: GenerationSettings,
                           grammar: str) -> Iterator[str]:
        """``stream``, with every token kept inside ``grammar`` (GBNF, root rule ``root``)."""
        ...


@runtime_checkable
class ToolCallingGenerator(Protocol):
    """A generator whose server takes OpenAI ``tools`` and ``tool_choice`` itself (an OpenAI-compatible API)."""

    def complete_with_tools(self, messages: list[dict[str, Any]], settings: GenerationSettings,
                            tools: list[dict[str, Any]], tool_choice: str | dict[str, Any]) -> ToolCallReply:
        """One chat completion with ``tools`` offered, ``messages`` in the OpenAI format (tool calls and tool
        results as structured messages)."""
        ...
