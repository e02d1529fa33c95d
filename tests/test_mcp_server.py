"""The MCP face through the official SDK's client against real server processes: over stdio and over streamable
HTTP, tools listed and each one called, the document resource read, bad arguments answered as tool errors (the
server keeps serving), the API-key rule off loopback. Fast tests run ``python -m app.mcp.testing`` (the same server
with stand-in models); the slow one runs ``python -m app.mcp`` itself with the packaged models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from app_fakes import ingest_with_hash_embedder, write_corpus
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from app.config import Settings, base_registry, settings_for_base
from app.server.process_harness import free_port

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"search_documents", "ask_documents", "list_knowledge_bases", "list_documents"}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A data folder whose default base holds the small test corpus (hash embedder)."""
    home = tmp_path_factory.mktemp("mcp_home")
    settings = Settings(data_dir=home)
    report = ingest_with_hash_embedder(settings, [write_corpus(home / "docs")])
    assert report.committed and not report.failures
    # A second, named base holding one other document.
    base_registry(settings).create("notes")
    notes = write_corpus(home / "notes_docs", {"kite.md": "# Kite\n\nThe kite festival is held every April.\n"})
    assert ingest_with_hash_embedder(settings_for_base(settings, "notes"), [notes]).committed
    return home


def _env(home: Path, **extra: str) -> dict[str, str]:
    # The evidence gate is calibrated on e5 cosines; the hash embedder's are lower, so it stays open here.
    return {**os.environ, "PYTHONPATH": str(ROOT), "DOCQA_HOME": str(home),
            "DOCQA_ANSWER__MIN_EVIDENCE_SCORE": "0", "HF_HUB_OFFLINE": "1", **extra}


@asynccontextmanager
async def stdio_session(home: Path, module: str = "app.mcp.testing", **env: str):
    params = StdioServerParameters(command=sys.executable, args=["-m", module], env=_env(home, **env), cwd=str(ROOT))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


class HttpServer:
    def __init__(self, home: Path, log: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._log = open(log, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "app.mcp.testing", "--http", "--port", str(self.port),
                                         *args], cwd=ROOT, env=_env(home, **env), stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.log = log

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                httpx.get(self.url, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"MCP server not ready: {self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def http_server(home, tmp_path):
    server = HttpServer(home, tmp_path / "mcp.log")
    server.wait_ready()
    yield server
    server.stop()


def _payload(result) -> dict:
    assert not result.isError, result.content
    return result.structuredContent


async def _call_every_tool(session: ClientSession) -> dict[str, dict]:
    listed = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(listed) == TOOLS
    for tool in listed.values():
        # Every description speaks to both Chinese and English users.
        assert any("\u4e00" <= ch <= "\u9fff" for ch in tool.description) and "the" in tool.description
    results = {
        "bases": _payload(await session.call_tool("list_knowledge_bases", {})),
        "documents": _payload(await session.call_tool("list_documents", {})),
        "search": _payload(await session.call_tool("search_documents", {"query": "星河数据库默认端口", "top_k": 2})),
        "ask": _payload(await session.call_tool("ask_documents", {"question": "星河数据库默认监听哪个端口？"})),
    }
    return results


def _check_results(results: dict[str, dict]) -> None:
    bases = {b["name"]: b for b in results["bases"]["bases"]}
    assert set(bases) == {"default", "notes"} and results["bases"]["bases"][0]["name"] == "default"
    assert (bases["default"]["documents"], bases["notes"]["documents"]) == (2, 1)
    assert bases["default"]["chunks"] >= 2 and not bases["default"]["problem"]
    names = sorted(d["name"] for d in results["documents"]["documents"])
    assert names == ["aurora-notes.txt", "星河数据库手册.md"]
    passages = results["search"]["passages"]
    assert len(passages) == 2 and "7341" in passages[0]["text"]
    assert passages[0]["source"].endswith("星河数据库手册.md") and {"dense", "bm25"} <= set(passages[0]["scores"])
    ask = results["ask"]
    assert not ask["refused"] and "7341" in ask["answer"]
    assert ask["citations"] and ask["citations"][0]["source"].endswith("星河数据库手册.md")


def test_a_stdio_session_lists_the_tools_calls_each_and_reads_a_document(home):
    async def scenario():
        async with stdio_session(home) as session:
            results = await _call_every_tool(session)
            _check_results(results)
            doc = next(d for d in results["documents"]["documents"] if d["name"] == "星河数据库手册.md")
            templates = (await session.list_resource_templates()).resourceTemplates
            assert [t.uriTemplate for t in templates] == ["docqa://bases/{base}/documents/{doc_id}"]
            content = json.loads((await session.read_resource(doc["uri"])).contents[0].text)
            assert content["name"] == "星河数据库手册.md"
            assert "7341" in "".join(c["text"] for c in content["chunks"])
            assert [c["ordinal"] for c in content["chunks"]] == sorted(c["ordinal"] for c in content["chunks"])

    anyio.run(scenario)


def test_bad_arguments_are_tool_errors_and_the_server_keeps_serving(home):
    async def scenario():
        async with stdio_session(home) as session:
            bad = {
                "wrong type": ("search_documents", {"query": "端口", "top_k": "many"}),
                "out of range": ("search_documents", {"query": "端口", "top_k": 10_000}),
                "missing": ("ask_documents", {}),
                "huge query": ("ask_documents", {"question": "端" * 100_000}),
                "not a string": ("ask_documents", {"question": ["端口"]}),
                "unknown base": ("ask_documents", {"question": "端口？", "base": "no-such-base"}),
                "unknown base (list)": ("list_documents", {"base": "no-such-base"}),
                "blank question": ("search_documents", {"query": "   "}),
            }
            for label, (tool, args) in bad.items():
                result = await session.call_tool(tool, args)
                assert result.isError, label
                message = result.content[0].text
                assert "Traceback" not in message and len(message) < 2000, (label, message)
            unknown = await session.call_tool("list_documents", {"base": "no-such-base"})
            assert "no knowledge base named 'no-such-base'" in unknown.content[0].text
            with pytest.raises(Exception, match="no document"):
                await session.read_resource("docqa://bases/default/documents/0000000000000000")
            # Another base, by name.
            kite = _payload(await session.call_tool("search_documents", {"query": "kite festival", "base": "notes"}))
            assert kite["base"] == "notes" and kite["passages"][0]["source"].endswith("kite.md")
            listed = _payload(await session.call_tool("list_documents", {"base": "notes"}))
            assert [d["uri"] for d in listed["documents"]] == [
                f"docqa://bases/notes/documents/{listed['documents'][0]['id']}"]
            # Several bases at once: fused, each passage naming its base.
            both = _payload(await session.call_tool("search_documents", {"query": "kite festival Aurora retries",
                                                                         "bases": ["default", "notes"]}))
            assert both["base"] == "default+notes" and both["notices"] == []
            assert {(p["base"], Path(p["source"]).name) for p in both["passages"]} >= {
                ("notes", "kite.md"), ("default", "aurora-notes.txt")}
            asked = _payload(await session.call_tool("ask_documents", {"question": "When is the kite festival held?",
                                                                       "bases": ["default", "notes"]}))
            assert [(c["base"], Path(c["source"]).name) for c in asked["citations"]] == [("notes", "kite.md")]
            # A base of the selection that does not exist is left out with a line; the others answer.
            missing = _payload(await session.call_tool("search_documents", {"query": "kite",
                                                                            "bases": ["notes", "nosuch"]}))
            assert missing["notices"][0].startswith("knowledge base 'nosuch' left out: no knowledge base named")
            assert missing["passages"][0]["base"] == "notes"
            # Still serving after all of that.
            assert _payload(await session.call_tool("search_documents", {"query": "Aurora retries"}))["passages"]

    anyio.run(scenario)


def test_a_streamable_http_session_lists_the_tools_and_calls_each(http_server):
    async def scenario():
        async with streamable_http_client(http_server.url) as (read, write, _), ClientSession(read, write) as session:
            await session.initialize()
            _check_results(await _call_every_tool(session))

    anyio.run(scenario)


def test_a_web_page_cannot_reach_the_http_server(http_server):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "page", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    rebound = httpx.post(http_server.url, json=init, headers={**headers, "Host": f"evil.example:{http_server.port}"})
    assert rebound.status_code == 403 and rebound.json()["error"]["code"] == "host_not_allowed"
    foreign = httpx.post(http_server.url, json=init, headers={**headers, "Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
    simple = httpx.post(http_server.url, content=json.dumps(init), headers={"Content-Type": "text/plain"})
    assert simple.status_code == 403 and simple.json()["error"]["code"] == "simple_request_refused"
    local_page = httpx.post(http_server.url, json=init, headers={**headers, "Origin": "http://localhost:3000"})
    assert local_page.status_code == 200


def test_configured_host_names_are_served(home, tmp_path):
    server = HttpServer(home, tmp_path / "mcp.log", DOCQA_MCP__ALLOWED_HOSTS='["docqa.lan"]')
    try:
        server.wait_ready()
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "lan", "version": "0"}}}
        headers = {"Accept": "application/json, text/event-stream", "Host": f"docqa.lan:{server.port}"}
        assert httpx.post(server.url, json=init, headers=headers).status_code == 200
    finally:
        server.stop()


def test_with_a_key_every_http_request_needs_it(home, tmp_path):
    server = HttpServer(home, tmp_path / "mcp.log", DOCQA_MCP__API_KEY="s3cret-key")
    try:
        server.wait_ready()
        refused = httpx.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401 and "s3cret" not in refused.text
        assert httpx.post(server.url, json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401

        async def scenario():
            client = create_mcp_http_client(headers={"Authorization": "Bearer s3cret-key"})
            async with client, streamable_http_client(server.url, http_client=client) as (read, write, _), \
                    ClientSession(read, write) as session:
                await session.initialize()
                assert {t.name for t in (await session.list_tools()).tools} == TOOLS

        anyio.run(scenario)
    finally:
        server.stop()


def test_off_loopback_without_a_key_the_server_refuses_to_start(home):
    done = subprocess.run([sys.executable, "-m", "app.mcp", "--http", "--host", "0.0.0.0"], cwd=ROOT,
                          env=_env(home), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: refusing to listen on 0.0.0.0: any address other than 127.0.0.1/::1 needs an API key "
        "(set DOCQA_MCP__API_KEY or [mcp] api_key)"]


@pytest.mark.slow
def test_the_real_server_answers_over_stdio_with_the_packaged_models(real_app_settings):
    """``python -m app.mcp`` itself (real embedder and LLM) over the real test base: each tool once."""
    env = {"DOCQA_HOME": str(real_app_settings.data_dir), "DOCQA_MODEL_CACHE_DIR": str(real_app_settings.models_path),
           "DOCQA_GENERATION__N_THREADS": "2", "DOCQA_GENERATION__MAX_NEW_TOKENS": "64",
           "DOCQA_EMBEDDER__NUM_THREADS": "2"}

    async def scenario():
        params = StdioServerParameters(command=sys.executable, args=["-m", "app.mcp"], cwd=str(ROOT),
                                       env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **env})
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            results = await _call_every_tool(session)
            assert results["documents"]["documents"]
            assert results["search"]["passages"]
            ask = results["ask"]
            assert not ask["refused"] and "7341" in ask["answer"], ask
            off_topic = _payload(await session.call_tool("ask_documents", {"question": "2022 年世界杯冠军是谁？"}))
            assert off_topic["refused"] and not off_topic["citations"]

    anyio.run(scenario)


def test_a_langchain_agent_reaches_the_documents_through_the_mcp_adapters(home):
    """The agent example's MCP route: langchain-mcp-adapters loads the server's tools over one stdio session and
    create_agent calls ask_documents (the model is scripted; the server process, protocol and tools are real)."""
    from langchain_core.messages import AIMessage, ToolMessage
    from test_agent import ScriptedTurns

    from app.langchain.agent_example import mcp_server_connection, run_mcp_agent
    from app.langchain.chat_model_adapter import LocalChatModel

    generator = ScriptedTurns(
        '<tool_call>\n{"name": "ask_documents", "arguments": {"question": "星河数据库默认监听哪个端口？"}}\n</tool_call>',
        "星河数据库默认监听 7341 端口 [1]。")
    connection = mcp_server_connection(module="app.mcp.testing")
    connection["env"].update(_env(home))
    messages = anyio.run(run_mcp_agent, LocalChatModel(generator=generator), "星河数据库的端口？", 6, connection)
    tool_result = next(m for m in messages if isinstance(m, ToolMessage))
    assert tool_result.name == "ask_documents" and "7341" in str(tool_result.content)
    assert '"refused":false' in str(tool_result.content).replace(" ", "")
    # The run ends with the server's answer and its sources, read from the result's structured content
    # (LocalChatModel.end_on_tool_answer): the scripted second reply is never asked for.
    final, answer = messages[-1], tool_result.artifact["structured_content"]
    assert isinstance(final, AIMessage) and final.response_metadata["answer_path"] == "tool_answer"
    n = answer["citations"][0]["number"]
    assert final.content.startswith(answer["answer"]) and f"\n[{n}] 星河数据库手册.md" in final.content
    assert len(generator.calls) == 1
    # The tools' descriptions and schemas reached the model's prompt.
    assert '"name": "ask_documents"' in generator.calls[0][0]["content"]
