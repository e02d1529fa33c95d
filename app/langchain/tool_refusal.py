"""docqa's refusal, read from a tool result's structured part, so an agent's run ends as the refusal it got.

A small local model that is told "the documents do not hold the answer" still answers from its own knowledge
(bench/RESULTS_AGENT.md: "Who won the 2022 FIFA World Cup?" got the tool's refusal and answered "France"). The
refusal is therefore read from the tool message's artifact — never from its text, which a document could imitate:
the ``Answer`` that ``search_knowledge_base`` returns beside its text, or the structured content of docqa's MCP
``ask_documents`` result as langchain-mcp-adapters hands it over (``{"structured_content": {"refused": true, …}}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from prompts.records import Answer


@dataclass(frozen=True)
class ToolRefusal:
    """A docqa tool's refusal: which tool, and its refusal text (in the question's language)."""

    tool: str
    text: str


def _verdict(message: ToolMessage) -> tuple[bool, str] | None:
    """(refused, the tool's answer text) when the message carries a docqa answer; None for any other result."""
    artifact: Any = message.artifact
    if isinstance(artifact, Answer):
        return artifact.refused, artifact.text
    structured = artifact.get("structured_content") if isinstance(artifact, dict) else None
    if isinstance(structured, dict) and isinstance(structured.get("refused"), bool):
        return structured["refused"], str(structured.get("answer") or "")
    return None


def last_step_refusal(messages: Sequence[BaseMessage]) -> ToolRefusal | None:
    """The refusal that ends the run: every tool result since the model's last turn is a docqa refusal. None when
    any of them answered, is another kind of result (a document list, passages) or an error, or when the model
    has not called a tool since its last turn — the model then writes the reply itself."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            results.append(message)
        elif isinstance(message, AIMessage):
            break
        else:
            return None
    if not results:
        return None
    refusals = []
    for message in reversed(results):
        verdict = _verdict(message) if message.status != "error" else None
        if verdict is None or not verdict[0]:
            return None
        refusals.append(ToolRefusal(message.name or "", verdict[1]))
    return refusals[0]
