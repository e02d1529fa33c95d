"""The names of the tools docqa offers agents: its LangChain tools and its MCP server's. Kept here, below both
faces, so an agent's chat model can tell a run whose only tools are docqa's from one that also has others
(app/langchain/tool_result_ending.py: only then does docqa's answered result become the reply)."""

from __future__ import annotations

# LangChain (app/langchain/langchain_tool.py).
SEARCH_KNOWLEDGE_BASE = "search_knowledge_base"
LIST_KNOWLEDGE_BASE_DOCUMENTS = "list_knowledge_base_documents"
# MCP (app/mcp/mcp_server.py), as langchain-mcp-adapters names them without a server prefix.
SEARCH_DOCUMENTS = "search_documents"
ASK_DOCUMENTS = "ask_documents"
LIST_KNOWLEDGE_BASES = "list_knowledge_bases"
LIST_DOCUMENTS = "list_documents"

DOCQA_TOOL_NAMES = frozenset({SEARCH_KNOWLEDGE_BASE, LIST_KNOWLEDGE_BASE_DOCUMENTS, SEARCH_DOCUMENTS, ASK_DOCUMENTS,
                              LIST_KNOWLEDGE_BASES, LIST_DOCUMENTS})
