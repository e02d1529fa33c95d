"""The docqa MCP server: tools to search a knowledge base, to ask it (a grounded answer with citations, or the
refusal), to list the bases and a base's documents, and a resource per document holding its chunks.

Built on the official ``mcp`` SDK's FastMCP: each tool's arguments are validated against the JSON schema it
publishes (types, lengths, ranges), so a wrong type or a 100 000-character query is a tool error the client sees,
never a crash; an unknown base, an empty base or a question the pipeline refuses to take is a tool error too, in
one line. Tools run in worker threads: a question being answered (10–30 s on CPU) does not stop the server from
answering others' pings and listings; the LLM itself answers one question at a time.
"""


from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ResourceError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from app.answer.agent_tool_names import ASK_DOCUMENTS, LIST_DOCUMENTS, LIST_KNOWLEDGE_BASES, SEARCH_DOCUMENTS
from app.answer.answer_pipeline import AskOptions, QuestionError
from app.answer.knowledge_bases import UnknownDocumentError, document_chunks, list_bases, list_documents
from app.config import ConfigError
from app.mcp.services import McpServices
from app.wiring import kb_notices, knowledge_store
from ingest.store.knowledge_base import KnowledgeBaseError
from retrieval.results import ScoredChunk

SERVER_NAME = "docqa"
INSTRUCTIONS = (
    "docqa answers questions from the user's own documents (Chinese and English), offline. Use ask_documents for "
    "a cited answer (it refuses when the documents do not hold the answer: tell the user so, do not answer from "
    "memory), search_documents for the passages themselves, list_knowledge_bases / list_documents to see what is "
    "there. 本服务只根据用户自己的文档回答问题：ask_documents 给出带出处的答案，文档中没有答案时会明确拒答；"
    "search_documents 返回相关段落；list_knowledge_bases / list_documents 列出知识库和文档。")
ASK_DESCRIPTION = (
    "Answer a question from the user's documents with numbered citations [n] (file, page, quoted sentence), or "
    "refuse (refused=true) when the documents do not contain the answer — then tell the user the documents do not "
    "say, rather than answering from your own knowledge. Takes 10-30 s on a CPU.\n"
    "根据用户的文档回答问题，答案带编号出处 [n]（文件、页码、引用原句）；文档中没有答案时拒答（refused=true），"
    "此时请如实告诉用户文档中没有，不要凭自己的知识作答。")
SEARCH_DESCRIPTION = (
    "Search the user's documents for passages relevant to a query (hybrid dense + keyword retrieval, reranked). "
    "Returns the passages with their source file, page, section and every stage's score; no answer is generated. "
    "Quick (under a second).\n"
    "在用户的文档中检索与查询相关的段落（向量 + 关键词混合检索并重排），返回段落原文、来源文件、页码、章节及各阶段得分；"
    "不生成答案。")
LIST_BASES_DESCRIPTION = (
    "List the knowledge bases (name, number of documents and chunks, and why one cannot be read, if so).\n"
    "列出所有知识库（名称、文档数、片段数；无法读取的会说明原因）。")
LIST_DOCUMENTS_DESCRIPTION = (
    "List the documents of a knowledge base: id, file name, path, title, type, number of chunks, last update, and "
    "the resource URI holding the document's chunks.\n"
    "列出知识库中的文档：编号、文件名、路径、标题、类型、片段数、更新时间，以及存放该文档全部片段的资源 URI。")
DOCUMENT_DESCRIPTION = (
    "The chunks of one document of a knowledge base, in reading order, with page and section. "
    "知识库中一篇文档的全部片段（按原文顺序，含页码和章节）。")
BASE_DESCRIPTION = "Knowledge base name (default: the configured one). 知识库名称（默认：当前配置的知识库）。"
BASES_DESCRIPTION = ("Several knowledge bases to search at once (instead of base); results are fused and each "
                     "names its base. 同时检索的多个知识库（代替 base），结果融合排序，并注明各自的知识库。")
# Bases one call may read at once (each is searched in turn before the fusion).
MAX_BASES = 16
DOCUMENT_URI = "docqa://bases/{base}/documents/{doc_id}"


class PassageOut(BaseModel):
    number: int
    base: str
    source: str
    page: int | None
    heading: str
    text: str
    score: float = Field(description="the most refined score: rerank, else fused, else dense")
    scores: dict[str, float] = Field(description="every retrieval stage's score: dense, bm25, fused, rerank")


class SearchResult(BaseModel):
    base: str
    query: str
    passages: list[PassageOut]
    # One line per base of ``bases`` that was left out (missing, damaged, empty).
    notices: list[str] = Field(default_factory=list)


class CitationOut(BaseModel):
    number: int
    base: str
    source: str
    page: int | None
    location: str = Field(default="", description='where in the file: "p.3", "slide 3", or "" (no pages)')
    heading: str = ""
    quote: str


class AskResult(BaseModel):
    base: str
    question: str
    answer: str
    refused: bool
    refusal_reason: str
    citations: list[CitationOut]
    notices: list[str] = Field(default_factory=list)


class BaseOut(BaseModel):
    name: str
    documents: int
    chunks: int
    problem: str


class BasesResult(BaseModel):
    bases: list[BaseOut]


class DocumentOut(BaseModel):
    id: str
    name: str
    path: str
    title: str
    file_type: str
    chunks: int
    updated_at: float
    uri: str


class DocumentsResult(BaseModel):
    base: str
    documents: list[DocumentOut]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _passage(number: int, passage: ScoredChunk, max_chars: int) -> PassageOut:
    chunk = passage.chunk
    stages = {"dense": passage.dense_score, "bm25": passage.bm25_score, "fused": passage.fused_score,
              "rerank": passage.rerank_score}
    return PassageOut(number=number, base=passage.base, source=chunk.source, page=chunk.page, heading=chunk.heading,
                      text=_clip(passage.text, max_chars), score=round(passage.score, 4),
                      scores={k: round(v, 4) for k, v in stages.items() if v is not None})


def _tool_error(what: str, exc: BaseException) -> ToolError:
    return ToolError(f"{what}: {exc}")


def build_server(services: McpServices, transport_security: TransportSecuritySettings | None = None) -> FastMCP:
    """The FastMCP server over ``services`` (tools and the document resource; transports are the caller's)."""
    settings = services.settings
    limits = settings.mcp
    Question = Annotated[str, Field(min_length=1, max_length=settings.limits.max_question_chars,
                                    description="The question or query, in the user's language. 问题或查询语句。")]
    Base = Annotated[str | None, Field(default=None, max_length=200, description=BASE_DESCRIPTION)]
    Bases = Annotated[list[Annotated[str, Field(max_length=200)]] | None,
                      Field(default=None, min_length=1, max_length=MAX_BASES, description=BASES_DESCRIPTION)]
    server = FastMCP(SERVER_NAME, instructions=INSTRUCTIONS, host=limits.host, port=limits.port,
                     streamable_http_path=limits.path, transport_security=transport_security)
    read_only = ToolAnnotations(readOnlyHint=True, openWorldHint=False)

    def snapshot(base: str | None, bases: list[str] | None = None):
        try:
            return services.snapshot(base, bases)
        except (ConfigError, KnowledgeBaseError) as exc:
            shown = "+".join(bases) if bases else base or services.settings.kb_name
            raise _tool_error(f"knowledge base {shown!r}", exc) from None

    def base_name(base: str | None) -> str:
        try:
            return services.base(base).kb_name
        except ConfigError as exc:
            raise ToolError(str(exc)) from None

    def searched(base: str | None, bases: list[str] | None, retriever: Any) -> str:
        """The base (or "A+B" for several) a result came from."""
        return "+".join(retriever.bases) if bases and hasattr(retriever, "bases") else base_name(base)

    def search(query: str, base: str | None, top_k: int, bases: list[str] | None = None) -> SearchResult:
        retriever = snapshot(base, bases).pipeline.retriever
        try:
            passages = retriever.retrieve(query, top_k=top_k).passages
        except (QuestionError, ValueError) as exc:
            raise _tool_error(SEARCH_DOCUMENTS, exc) from None
        return SearchResult(base=searched(base, bases, retriever), query=query, notices=kb_notices(retriever),
                            passages=[_passage(i, p, limits.passage_chars) for i, p in enumerate(passages, 1)])

    def ask(question: str, base: str | None, bases: list[str] | None = None) -> AskResult:
        pipeline = snapshot(base, bases).pipeline
        try:
            answer = pipeline.answer(question, AskOptions())
        except (QuestionError, ValueError) as exc:
            raise _tool_error(ASK_DOCUMENTS, exc) from None
        citations = [CitationOut(number=c.number, base=c.passage.base, source=c.passage.chunk.source,
                                 page=c.passage.chunk.page, location=c.passage.chunk.page_label,
                                 heading=c.passage.chunk.heading,
                                 quote=_clip(c.quoted_text or c.passage.text, limits.passage_chars))
                     for c in answer.citations]
        return AskResult(base=searched(base, bases, pipeline.retriever), question=question, answer=answer.text,
                         refused=answer.refused, refusal_reason=answer.refusal_reason, citations=citations,
                         notices=kb_notices(pipeline.retriever))

    def documents(base: str | None) -> DocumentsResult:
        name = base_name(base)
        try:
            found = list_documents(services.store(base))
        except (KnowledgeBaseError, OSError) as exc:
            raise _tool_error(f"knowledge base {name!r}", exc) from None
        return DocumentsResult(base=name, documents=[
            DocumentOut(id=d.id, name=d.name, path=d.path, title=d.title, file_type=d.file_type, chunks=d.chunks,
                        updated_at=d.updated_at, uri=DOCUMENT_URI.format(base=name, doc_id=d.id)) for d in found])

    @server.tool(name=SEARCH_DOCUMENTS, description=SEARCH_DESCRIPTION, annotations=read_only)
    async def search_documents(
            query: Question, base: Base = None,
            top_k: Annotated[int, Field(ge=1, le=limits.max_passages, description="Passages to return. 返回的段落数。")]
            = limits.default_passages, bases: Bases = None) -> SearchResult:
        return await anyio.to_thread.run_sync(search, query, base, top_k, bases)

    @server.tool(name=ASK_DOCUMENTS, description=ASK_DESCRIPTION, annotations=read_only)
    async def ask_documents(question: Question, base: Base = None, bases: Bases = None) -> AskResult:
        return await anyio.to_thread.run_sync(ask, question, base, bases)

    @server.tool(name=LIST_KNOWLEDGE_BASES, description=LIST_BASES_DESCRIPTION, annotations=read_only)
    async def list_knowledge_bases() -> BasesResult:
        try:
            bases = await anyio.to_thread.run_sync(list_bases, settings, knowledge_store)
        except ConfigError as exc:
            raise ToolError(str(exc)) from None
        return BasesResult(bases=[BaseOut(name=b.name, documents=b.documents, chunks=b.chunks, problem=b.problem)
                                  for b in bases])

    @server.tool(name=LIST_DOCUMENTS, description=LIST_DOCUMENTS_DESCRIPTION, annotations=read_only)
    async def list_base_documents(base: Base = None) -> DocumentsResult:
        return await anyio.to_thread.run_sync(documents, base)

    @server.resource(DOCUMENT_URI, name="document", description=DOCUMENT_DESCRIPTION, mime_type="application/json")
    async def document(base: str, doc_id: str) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            try:
                record, chunks = document_chunks(services.store(base), doc_id)
            except (ConfigError, KnowledgeBaseError, UnknownDocumentError, OSError) as exc:
                raise ResourceError(str(exc)) from None
            return {"base": base, "id": record.id, "name": Path(record.path).name, "path": record.path,
                    "title": record.title, "chunks": [{"ordinal": c.ordinal, "page": c.page, "heading": c.heading,
                                                        "text": c.text} for c in chunks]}
        return await anyio.to_thread.run_sync(read)

    return server
