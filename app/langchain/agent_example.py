"""``python -m app.langchain.agent_example "问题"``: a LangChain agent (``langchain.agents.create_agent``) running
fully offline on the packaged local LLM, answering through the ``search_knowledge_base`` tool. The local model's
tool calls are decoded under a grammar (app/langchain/tool_call_grammar.py), so every call it makes is well formed.

``--mcp`` gives the same agent docqa's MCP server instead (``python -m app.mcp`` started over stdio and its tools
loaded through ``langchain-mcp-adapters``): the way any MCP-speaking agent reaches the documents.
``--chain`` runs the question through a plain LangChain chain instead (retriever → prompt → local model).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from app.config import ConfigError, Settings, load_settings
from app.langchain.chat_model_adapter import LocalChatModel
from app.langchain.langchain_tool import (
    AGENT_INSTRUCTIONS,
    MCP_AGENT_INSTRUCTIONS,
    KnowledgeBaseTools,
    build_knowledge_base_tools,
)
from app.wiring import quiet_model_libraries
from ingest.store.knowledge_base import KnowledgeBaseError

CHAIN_PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer the question only from the numbered passages, citing them as [n]. If they do not contain "
               "the answer, say so. Answer in the language of the question.\n\n{passages}"),
    ("human", "{question}"),
])


def build_agent(tools: KnowledgeBaseTools, model: LocalChatModel) -> Any:
    """A tool-calling agent over the knowledge-base tools (a LangGraph graph: invoke/stream with messages)."""
    return create_agent(model, tools.tools, system_prompt=AGENT_INSTRUCTIONS)


def build_chain(tools: KnowledgeBaseTools, model: LocalChatModel) -> Runnable:
    """The plain-chain alternative: question → retrieved passages → prompt → local model → text."""
    retriever = tools.retriever()

    def numbered(docs: list) -> str:
        return "\n\n".join(f"[{i}] {Path(d.metadata['source']).name}\n{d.page_content}"
                           for i, d in enumerate(docs, start=1))

    return ({"passages": retriever | RunnableLambda(numbered), "question": RunnablePassthrough()}
            | CHAIN_PROMPT | model | StrOutputParser())


def mcp_server_connection(kb: Path | None = None, module: str = "app.mcp") -> dict[str, Any]:
    """How ``langchain-mcp-adapters`` starts docqa's MCP server: this Python, ``-m app.mcp``, over stdio."""
    # The MCP SDK starts servers with a minimal environment: pass docqa's own settings (and the import path) on.
    env = {k: v for k, v in os.environ.items() if k.startswith(("DOCQA_", "HF_")) or k in ("PYTHONPATH", "HOME")}
    if kb:
        env["DOCQA_KB_DIR"] = str(kb)
    return {"transport": "stdio", "command": sys.executable, "args": ["-m", module], "env": env}


async def run_mcp_agent(model: LocalChatModel, question: str, max_steps: int,
                        connection: dict[str, Any]) -> list[Any]:
    """The agent over docqa's MCP tools: one MCP session (one server process) for the whole run — the adapters'
    ``get_tools`` would start a server per tool call."""
    from langchain_mcp_adapters.client import MultiServerMCPClient
    from langchain_mcp_adapters.tools import load_mcp_tools

    client = MultiServerMCPClient({"docqa": connection})
    async with client.session("docqa") as session:
        tools = [t for t in await load_mcp_tools(session) if t.name in ("ask_documents", "list_documents")]
        agent = create_agent(model, tools, system_prompt=MCP_AGENT_INSTRUCTIONS)
        messages: list[Any] = []
        async for update in agent.astream({"messages": [{"role": "user", "content": question}]},
                                          config={"recursion_limit": max_steps}, stream_mode="updates"):
            _take_step(update, messages)
        return messages


def _take_step(update: dict[str, Any], messages: list[Any]) -> None:
    """One LangGraph update: print its messages and keep them."""
    for step in update.values():
        for message in (step or {}).get("messages", []):
            _print_step(message)
            messages.append(message)


# Marks on a final reply that docqa wrote (response_metadata["answer_path"]), not the model.
_BY = {"tool_refusal": " [docqa's refusal]", "tool_answer": " [docqa's answer]"}


def _print_step(message: Any) -> None:
    if isinstance(message, AIMessage) and message.tool_calls:
        for call in message.tool_calls:
            print(f"→ tool call {call['name']}({call['args']})", flush=True)
    elif isinstance(message, ToolMessage):
        print(f"← {message.name}:\n{message.content}\n", flush=True)
    elif isinstance(message, AIMessage):
        # A refusal or answer the adapter passed on (LocalChatModel.end_on_tool_refusal / end_on_tool_answer) is
        # docqa's, not the model's words.
        by = _BY.get(message.response_metadata.get("answer_path", ""), "")
        print(f"\n{message.content}{by}", flush=True)


def run_agent(agent: Any, question: str, max_steps: int) -> list[Any]:
    """Run the agent on ``question``, printing each tool call, tool result and the final answer."""
    messages: list[Any] = []
    for update in agent.stream({"messages": [{"role": "user", "content": question}]},
                               config={"recursion_limit": max_steps}, stream_mode="updates"):
        _take_step(update, messages)
    return messages


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.langchain.agent_example", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("question", help="the question (Chinese or English)")
    p.add_argument("--kb", type=Path, help="knowledge base folder (default: Settings.kb_path)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="answer budget of the agent's model per step")
    p.add_argument("--max-steps", type=int, default=8, help="LangGraph recursion limit (model + tool steps)")
    p.add_argument("--chain", action="store_true", help="run a plain retriever → prompt → model chain instead")
    p.add_argument("--mcp", action="store_true", help="reach the documents through docqa's MCP server")
    return p


def main(argv: list[str] | None = None) -> int:
    quiet_model_libraries()
    args = _parser().parse_args(argv)
    try:
        settings: Settings = load_settings(**({"kb_dir": args.kb} if args.kb else {}))
        if args.mcp:
            model = LocalChatModel.from_settings(settings, max_new_tokens=args.max_new_tokens)
            asyncio.run(run_mcp_agent(model, args.question, args.max_steps, mcp_server_connection(args.kb)))
            return 0
        print("loading the knowledge base, embedder and local LLM…", file=sys.stderr, flush=True)
        tools = build_knowledge_base_tools(settings=settings)
    except (ConfigError, KnowledgeBaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = LocalChatModel.from_settings(settings, max_new_tokens=args.max_new_tokens)
    if args.chain:
        for piece in build_chain(tools, model).stream(args.question):
            print(piece, end="", flush=True)
        print()
        return 0
    run_agent(build_agent(tools, model), args.question, args.max_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
