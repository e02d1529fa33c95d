"""The OpenAI-compatible backend against a local HTTP server speaking the streaming chat protocol.

The server is a stand-in for vLLM / llama.cpp server (neither runs here); it checks the request we send and
streams server-sent events the way they do."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from app.config import GenerationSettings
from app.generation.base import GenerationError
from app.generation.openai_backend import OpenAICompatibleGenerator


class _Handler(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, dict]]] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, body))
        if self.path == "/tokenize" and "prompt" in body:
            self._json({"count": len(body["prompt"].split())})
        elif self.path == "/v1/chat/completions" and body["model"] == "m" and body.get("tools"):
            # A server doing tool calling itself (vLLM, llama.cpp server): one call of the first offered tool.
            name = body["tools"][0]["function"]["name"]
            self._json({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": "call_9", "type": "function",
                                "function": {"name": name, "arguments": '{"question": "端口"}'}}]}}]})
        elif self.path == "/v1/chat/completions" and body["model"] == "m":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in ["你好", "，", "世界[1]"]:
                event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
        else:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "model not found"}')

    def _json(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_streams_deltas_and_sends_decoding_settings(server_url):
    settings = GenerationSettings(backend="openai", model="m", openai_base_url=server_url, temperature=0.0,
                                  sampling_top_k=7, max_new_tokens=33)
    gen = OpenAICompatibleGenerator(settings)
    assert list(gen.stream([{"role": "user", "content": "hi"}], settings)) == ["你好", "，", "世界[1]"]
    path, body = _Handler.requests[-1]
    assert path == "/v1/chat/completions" and body["stream"] is True
    assert (body["temperature"], body["top_k"], body["max_tokens"]) == (0.0, 7, 33)


def test_counts_tokens_with_the_server_tokenizer(server_url):
    gen = OpenAICompatibleGenerator(GenerationSettings(backend="openai", model="m", openai_base_url=server_url))
    assert gen.count_tokens("a b c") == 3


def test_http_errors_are_reported_with_the_url(server_url):
    settings = GenerationSettings(backend="openai", model="other", openai_base_url=server_url)
    with pytest.raises(GenerationError, match="chat/completions: server answered HTTP 404"):
        list(OpenAICompatibleGenerator(settings).stream([{"role": "user", "content": "hi"}], settings))


def test_unreachable_server_is_a_clear_error():
    settings = GenerationSettings(backend="openai", model="m", openai_base_url="http://127.0.0.1:9/v1")
    with pytest.raises(GenerationError, match="cannot reach the OpenAI-compatible server"):
        list(OpenAICompatibleGenerator(settings).stream([{"role": "user", "content": "hi"}], settings))


def test_tools_and_tool_choice_go_through_to_the_server(server_url):
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool

    from app.langchain.chat_model_adapter import LocalChatModel

    @tool
    def search_docs(question: str) -> str:
        """Search the documents."""
        return ""

    settings = GenerationSettings(backend="openai", model="m", openai_base_url=server_url, max_new_tokens=40)
    model = LocalChatModel(generator=OpenAICompatibleGenerator(settings), generation=settings)
    reply = model.bind_tools([search_docs], tool_choice="any").invoke([HumanMessage("端口？")])
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [("search_docs", {"question": "端口"},
                                                                            "call_9")]
    assert reply.response_metadata["tool_call_path"] == "native"
    path, body = _Handler.requests[-1]
    assert body["stream"] is False and body["tool_choice"] == "required" and body["max_tokens"] == 40
    assert body["tools"][0]["function"]["name"] == "search_docs"
    assert body["messages"] == [{"role": "user", "content": "端口？"}]
