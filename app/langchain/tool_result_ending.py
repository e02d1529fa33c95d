"""The reply that ends an agent's run on docqa's own verdict, read from the tool results' structured part: the
refusal it got, or the grounded answer it got, without asking the model to rewrite either.

A small local model does not pass docqa's verdicts on faithfully (bench/RESULTS_AGENT.md). Told "the documents do
not hold the answer", the bundled 1.5B model still answered from its own knowledge ("Who won the 2022 FIFA World
Cup?" → "France"); given an answer with its sources, it paraphrased the wrong source, or replied "I'm sorry, but I
can't assist with that." The verdict is therefore read from the tool message's artifact — never from its text,
which a document could imitate: the ``Answer`` that ``search_knowledge_base`` returns beside its text, or the
structured content of docqa's MCP ``ask_documents`` result as langchain-mcp-adapters hands it over
(``{"structured_content": {"refused": …, "answer": …, "citations": […]}}``).

- A refusal ends the run whatever else is bound: the documents' "no" is not the model's to overturn.
- An answer ends the run only when docqa's tools are the only tools bound: with other tools the model may still
  have work to do with the answer (compute, send, combine). LangChain's own precedent is a tool's
  ``return_direct``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from app.answer.agent_tool_names import DOCQA_TOOL_NAMES
from prompts.records import Answer
from prompts.templates import place_label

# response_metadata["answer_path"] of a reply the adapter wrote from a tool result (the model's own: "model").
EndingKind = Literal["tool_refusal", "tool_answer"]


@dataclass(frozen=True)
class DocqaResult:
    """What a docqa tool result says: refused or answered, its text (in the question's language), and for an
    answer its cited sources as ``[n] file p.2 — heading`` lines."""

    refused: bool
    text: str
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolEnding:
    """The reply that ends the run: which tool gave it, and whether it is a refusal or an answer."""

    kind: EndingKind
    tool: str
    result: DocqaResult

    @property
    def reply(self) -> str:
        """The tool's text, an answer followed by its sources (the [n] in the text point at them)."""
        return with_sources(self.result.text, self.result.sources)


def with_sources(text: str, sources: Sequence[str]) -> str:
    """``text``, then a blank line and one source line per citation (none: ``text`` alone)."""
    return text + "\n\n" + "\n".join(sources) if sources else text


def _source_line(number: object, base: str, several_bases: bool, source: str, location: str, heading: str) -> str:
    """``[n] file p.2 — heading``, the base first when the answer drew on several."""
    return f"[{number}] " + (f"{base} · " if several_bases and base else "") + place_label(source, location, heading)


def _from_answer(answer: Answer) -> DocqaResult:
    several = len({p.base for p in answer.passages}) > 1
    return DocqaResult(answer.refused, answer.text, tuple(
        _source_line(c.number, c.passage.base, several, c.passage.chunk.source, c.passage.chunk.page_label,
                     c.passage.chunk.heading)
        for c in answer.citations))


def _from_structured(structured: dict[str, Any]) -> DocqaResult:
    citations = [c for c in structured.get("citations") or [] if isinstance(c, dict)]
    several = len({c.get("base") for c in citations}) > 1
    return DocqaResult(structured["refused"], str(structured.get("answer") or ""), tuple(
        _source_line(c.get("number"), str(c.get("base") or ""), several, str(c.get("source") or ""),
                     str(c.get("location") or ""), str(c.get("heading") or ""))
        for c in citations))


def docqa_result(message: ToolMessage) -> DocqaResult | None:
    """The docqa verdict a tool message carries in its structured part; None for any other result (a document
    list, passages, another tool's) and for a tool error."""
    if message.status == "error":
        return None
    artifact: Any = message.artifact
    if isinstance(artifact, Answer):
        return _from_answer(artifact)
    structured = artifact.get("structured_content") if isinstance(artifact, dict) else None
    if isinstance(structured, dict) and isinstance(structured.get("refused"), bool):
        return _from_structured(structured)
    return None


def _last_step(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    """The tool results since the model's last turn, in order; empty when the conversation does not end with the
    results of the model's calls (a new user message, or no call at all)."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            results.append(message)
        elif isinstance(message, AIMessage):
            break
        else:
            return []
    return results[::-1]


def tool_result_ending(messages: Sequence[BaseMessage], bound_tools: Sequence[str], *, on_refusal: bool = True,
                       on_answer: bool = True) -> ToolEnding | None:
    """The reply that ends the run, when every tool result since the model's last turn is a docqa verdict of one
    kind: all refusals (``on_refusal``) → the first refusal; all the same answer (``on_answer``), with only docqa's
    tools in ``bound_tools`` → that answer with its sources. None — the model writes the reply — when any result
    is another kind (another tool's, a document list, passages, an error), refusals and answers are mixed, the
    answers differ, or the model has not called a tool since its last turn."""
    results = _last_step(messages)
    verdicts = [docqa_result(m) for m in results]
    if not results or any(v is None for v in verdicts):
        return None
    found = [v for v in verdicts if v is not None]
    first = ToolEnding("tool_refusal" if found[0].refused else "tool_answer", results[0].name or "", found[0])
    if all(v.refused for v in found):
        return first if on_refusal else None
    if any(v.refused for v in found) or not on_answer or not set(bound_tools) <= DOCQA_TOOL_NAMES:
        return None
    return first if all(v == found[0] for v in found) else None
