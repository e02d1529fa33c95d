"""LangChain tools over the knowledge base, for anyone's agent: ``search_knowledge_base`` and
``list_knowledge_base_documents``.

``search_knowledge_base`` returns text an agent can read and cite: the grounded answer with numbered sources
(file, page, heading, the cited sentence), a plain refusal with the closest passages, or — with
``passages_only`` — the retrieved passages without calling the local LLM (for agents whose own model writes the
answer). The full ``Answer`` (or passage list) rides along as the tool message's artifact.

``bases=["work", "home"]`` puts several knowledge bases behind the same tools: retrieval runs in each and is fused
(app/answer/base_selection.py), and every source names its base ("home · garden.txt").
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from app.answer.agent_tool_names import ASK_DOCUMENTS, LIST_KNOWLEDGE_BASE_DOCUMENTS, SEARCH_KNOWLEDGE_BASE
from app.answer.answer_pipeline import AnswerPipeline, QuestionError
from app.answer.base_selection import open_bases_retriever
from app.answer.cited_span import answer_span
from app.config import Settings, load_settings
from app.wiring import (
    assemble_pipeline,
    build_generator,
    build_pipeline,
    build_retriever,
    kb_notices,
    knowledge_store,
    load_embedder,
)
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.store.store_protocol import StoreSnapshot
from prompts.records import Answer
from retrieval.hybrid_retriever import HybridRetriever
from retrieval.langchain_retriever import DocqaRetriever, to_document
from retrieval.multi_base_retriever import MultiBaseRetriever
from retrieval.results import ScoredChunk

# Re-exported so `from app.langchain.langchain_tool import DocqaRetriever` gives a LangChain BaseRetriever over the
# same base.
__all__ = ["AGENT_INSTRUCTIONS", "MCP_AGENT_INSTRUCTIONS", "DocqaRetriever", "KnowledgeBaseTools", "build_knowledge_base_tools",
           "format_answer", "format_passages", "to_document"]

SEARCH_DESCRIPTION = (
    "Search the user's private document collection (Chinese and English) and answer a question from it. "
    "Returns an answer with numbered sources [n] (file, page, section, quoted sentence), or says the documents do "
    "not contain the answer. Set passages_only=true to get the raw numbered passages instead of an answer. "
    "Use it for any question about the user's documents; cite the [n] sources in your reply.")


def agent_instructions(tool: str, when_refused: str) -> str:
    """A system prompt for agents whose documents are behind ``tool`` (a tool taking ``question``);
    ``when_refused`` says how its result shows that the documents do not hold the answer. In both languages (the
    bundled 1.5B model answered from its own knowledge under a plain English instruction). No call is written out
    and no refusal text quoted: with them, the model copied them as its first words ("NOT FOUND" before searching).
    "Even one you think you know" and "only greetings and thanks without it": of four wordings probed on the tuning
    half of bench/questions/agent_qa.jsonl, this one (English first) left the widest gap between the probability
    of beginning a call on questions and on small talk (bench/RESULTS_AGENT.md)."""
    return (
        f"You answer questions about the user's documents: for every question, even one you think you know, first "
        f"call {tool} with the user's question, then answer only from its result, in the language of the question, "
        "keeping its [n] source numbers. Only greetings and thanks are answered without it.\n"
        f"你是文档问答助手。用户的每个问题都要先调用 {tool} 工具，在用户的文档中查找，再只根据工具结果回答；"
        f"即使你觉得自己知道答案也要先查：用户问的是他们文档里写的内容。不要凭自己的知识回答。{when_refused}时，"
        "如实告诉用户。只有问候、道谢这类寒暄不用查，直接回复。")


# The system prompt of the example agent over these tools, and over docqa's MCP server's ask_documents.
AGENT_INSTRUCTIONS = agent_instructions(SEARCH_KNOWLEDGE_BASE, "工具结果说文档中没有答案")
MCP_AGENT_INSTRUCTIONS = agent_instructions(ASK_DOCUMENTS, '工具结果中 "refused" 为 true')
PASSAGES_DESCRIPTION = (
    "Search the user's private document collection (Chinese and English) for passages relevant to a question. "
    "Returns numbered passages [n] with file, page, section and score; answer from them and cite the [n] you use. "
    "If none is relevant, tell the user the documents do not contain the answer.")
LIST_DESCRIPTION = "List the documents in the user's knowledge base (file, title, number of chunks, last update)."


class SearchInput(BaseModel):
    question: str = Field(description="The question, in the user's language (Chinese or English).")
    passages_only: bool = Field(default=False,
                                description="Return the retrieved passages only, without a generated answer.")


def _source_line(number: int, passage: ScoredChunk, with_base: bool = False) -> str:
    chunk = passage.chunk
    name = Path(chunk.source).name or chunk.source
    parts = [f"{passage.base} · {name}" if with_base and passage.base else name]
    if chunk.page_label:
        parts.append(chunk.page_label)
    if chunk.heading:
        parts.append(chunk.heading)
    return f"[{number}] " + ", ".join(parts)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def format_passages(passages: list[ScoredChunk], max_chars: int) -> str:
    """Numbered passages with their source and score, each clipped to ``max_chars``."""
    if not passages:
        return "No passages found in the knowledge base."
    several = _several_bases(passages)
    blocks = [f"{_source_line(i, p, several)} (score {p.score:.3f})\n{_clip(p.text, max_chars)}"
              for i, p in enumerate(passages, start=1)]
    return "Passages:\n" + "\n\n".join(blocks)


def format_answer(answer: Answer, max_chars: int) -> str:
    """The answer and its numbered sources; a refusal says so and lists the closest passages."""
    if answer.refused:
        return (f"NOT FOUND: {answer.text}\n\nClosest passages considered (they do not answer it):\n"
                + format_passages(answer.passages, max_chars).removeprefix("Passages:\n"))
    lines = [f"Answer: {answer.text}", "", "Sources:"]
    several = _several_bases(answer.passages)
    for citation in answer.citations:
        quoted = citation.quoted_text or citation.passage.text
        span = answer_span(quoted, answer.text, citation.number, answer.question)
        lines.append(f"{_source_line(citation.number, citation.passage, several)}: "
                     f"\"{_clip(quoted[span[0]:span[1]] if span else quoted, max_chars)}\"")
    unsupported = [c.sentence for c in answer.checks if not c.supported]
    if unsupported:
        lines += ["", "Warning: these sentences are weakly supported by their sources: " + " | ".join(unsupported)]
    return "\n".join(lines)


def _several_bases(passages: list[ScoredChunk]) -> bool:
    """Whether the passages come from more than one base (their sources then name it)."""
    return len({p.base for p in passages}) > 1


def format_documents(kb: StoreSnapshot, base: str = "") -> str:
    documents = kb.documents()
    where = f"Knowledge base {base!r}" if base else "The knowledge base"
    if not documents:
        return f"{where} holds no documents."
    lines = [f"{where}: {len(documents)} documents, {kb.info.n_chunks} chunks:" if base
             else f"{len(documents)} documents, {kb.info.n_chunks} chunks:"]
    for doc in sorted(documents, key=lambda d: d.path):
        when = _dt.datetime.fromtimestamp(doc.updated_at or doc.mtime).strftime("%Y-%m-%d %H:%M")
        title = f" — {doc.title}" if doc.title and doc.title != Path(doc.path).stem else ""
        lines.append(f"- {Path(doc.path).name}{title} ({doc.n_chunks} chunks, updated {when})")
    return "\n".join(lines)


@dataclasses.dataclass
class KnowledgeBaseTools:
    """The tools and what they run on (kept so callers can reuse the loaded components)."""

    search: BaseTool
    list_documents: BaseTool
    retriever_engine: HybridRetriever | MultiBaseRetriever
    pipeline: AnswerPipeline | None  # None when built with local_llm=False (passages only)
    settings: Settings

    @property
    def tools(self) -> list[BaseTool]:
        return [self.search, self.list_documents]

    def retriever(self, top_k: int | None = None) -> DocqaRetriever:
        """A LangChain BaseRetriever over the same loaded knowledge base."""
        return DocqaRetriever(retriever=self.retriever_engine, top_k=top_k)


def build_knowledge_base_tools(kb_dir: Path | str | None = None, settings: Settings | None = None,
                               pipeline: AnswerPipeline | None = None, local_llm: bool = True,
                               bases: Sequence[str] | None = None) -> KnowledgeBaseTools:
    """Tools over the knowledge base at ``kb_dir`` (default: ``settings.kb_path``), or over the named ``bases``
    (one or several: fused, each source naming its base; a damaged or empty one is left out and the list tool
    says so), loading the embedder, retriever and (unless ``local_llm=False``) the local LLM once. Pass
    ``pipeline`` to reuse one already built. An unknown base name is ConfigError.

    With ``local_llm=False`` nothing generates: ``search_knowledge_base`` always returns the numbered passages, for
    agents whose own model writes the answer.
    """
    settings = settings or load_settings()
    if kb_dir is not None:
        settings = settings.replace(kb_dir=Path(kb_dir))
    try:
        if bases and pipeline is None:
            embedder = load_embedder(settings)
            combined = open_bases_retriever(settings, bases, embedder)
            pipeline = (assemble_pipeline(combined, build_generator(settings), embedder, settings) if local_llm
                        else None)
            retriever: HybridRetriever | MultiBaseRetriever = combined
        else:
            store = knowledge_store(settings)
            if pipeline is None and store.live_generation() is None:  # checked before any model loads
                raise KnowledgeBaseError(f"{store.location}: no knowledge base here yet (run `python -m ingest`)")
            if pipeline is None and local_llm:
                pipeline = build_pipeline(settings)
            retriever = pipeline.retriever if pipeline is not None else build_retriever(settings)
    except KnowledgeBaseError as exc:
        raise KnowledgeBaseError(f"cannot build the knowledge-base tools: {exc}") from exc
    max_chars = settings.answer.tool_passage_chars

    def search(question: str, passages_only: bool = False) -> tuple[str, Any]:
        try:
            if passages_only or pipeline is None:
                passages = retriever.retrieve(question).passages
                return format_passages(passages, max_chars), passages
            answer = pipeline.answer(question)
        except (QuestionError, ValueError) as exc:
            raise ToolException(f"{SEARCH_KNOWLEDGE_BASE}: {exc}") from exc
        return format_answer(answer, max_chars), answer

    def list_documents() -> str:
        if isinstance(retriever, MultiBaseRetriever):
            return "\n\n".join([*(format_documents(part.kb, part.base) for part in retriever.parts),
                                 *kb_notices(retriever)])
        return format_documents(retriever.kb)

    search_tool = StructuredTool.from_function(
        func=search, name=SEARCH_KNOWLEDGE_BASE,
        description=SEARCH_DESCRIPTION if pipeline is not None else PASSAGES_DESCRIPTION, args_schema=SearchInput,
        response_format="content_and_artifact", handle_tool_error=True)
    list_tool = StructuredTool.from_function(
        func=list_documents, name=LIST_KNOWLEDGE_BASE_DOCUMENTS, description=LIST_DESCRIPTION,
        handle_tool_error=True)
    return KnowledgeBaseTools(search_tool, list_tool, retriever, pipeline, settings)
