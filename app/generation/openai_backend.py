"""An OpenAI-compatible chat server (vLLM, llama.cpp server, ...) over plain HTTP with server-sent events."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from app.generation.base import GenerationError, Message, ToolCallReply
from app.generation.settings import GenerationSettings

# Characters per token when the server offers no /tokenize endpoint: deliberately low (CJK is ~1 char/token)
# so budgets computed from it err on the side of a shorter prompt.
_FALLBACK_CHARS_PER_TOKEN = 1.0
_TIMEOUT_S = 600


class OpenAICompatibleGenerator:
    def __init__(self, settings: GenerationSettings) -> None:
        self._base = settings.openai_base_url.rstrip("/")
        self._model = settings.model
        self.name = settings.model
        self.n_ctx = settings.n_ctx
        # Which /tokenize request form the server understood (index into the attempts), -1 = none; None = untried.
        self._tokenize_form: int | None = None

    def _post(self, url: str, payload: dict, stream: bool = False):
        request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            return urllib.request.urlopen(request, timeout=_TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise GenerationError(f"{url}: server answered HTTP {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            raise GenerationError(f"{url}: cannot reach the OpenAI-compatible server: {exc.reason}") from exc

    def _payload(self, messages: list[Any], settings: GenerationSettings, stream: bool) -> dict[str, Any]:
        return {
            "model": self._model, "messages": messages, "stream": stream,
            "temperature": settings.temperature, "top_p": settings.top_p,
            "max_tokens": settings.max_new_tokens, "seed": settings.seed,
            # Not in the OpenAI API but understood by vLLM (top_k, repetition_penalty) and llama.cpp server
            # (top_k, repeat_penalty); servers ignore the names they do not know.
            "top_k": settings.sampling_top_k, "repetition_penalty": settings.repetition_penalty,
            "repeat_penalty": settings.repetition_penalty,
        }

    def complete_with_tools(self, messages: list[dict[str, Any]], settings: GenerationSettings,
                            tools: list[dict[str, Any]], tool_choice: str | dict[str, Any]) -> ToolCallReply:
        """The server's own tool calling: ``tools`` and ``tool_choice`` go through as they are (servers that
        constrain tool calls, such as vLLM and llama.cpp's, do it there)."""
        payload = {**self._payload(messages, settings, stream=False), "tools": tools, "tool_choice": tool_choice}
        url = f"{self._base}/chat/completions"
        with self._post(url, payload) as response:
            try:
                message = json.loads(response.read())["choices"][0]["message"]
            except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
                raise GenerationError(f"{url}: not a chat completion: {exc}") from exc
        calls = [{"id": c.get("id") or "", "name": c["function"]["name"],
                  "arguments": c["function"].get("arguments") or "{}"}
                 for c in message.get("tool_calls") or [] if c.get("function", {}).get("name")]
        return ToolCallReply(message.get("content") or "", calls)

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        payload = self._payload(messages, settings, stream=True)
        url = f"{self._base}/chat/completions"
        with self._post(url, payload) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    break
                event = json.loads(data)
                if "error" in event:
                    raise GenerationError(f"{url}: {event['error']}")
                for choice in event.get("choices", []):
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece

    def _server_root(self) -> str:
        return self._base.removesuffix("/v1")

    def count_tokens(self, text: str) -> int:
        """Tokens from the server's /tokenize (vLLM: {"count"}; llama.cpp server: {"tokens"}); when it has
        none, a conservative character-based estimate."""
        root = self._server_root()
        attempts = [(f"{root}/tokenize", {"model": self._model, "prompt": text, "add_special_tokens": False}),
                    (f"{root}/tokenize", {"content": text, "add_special": False})]
        if self._tokenize_form is not None:
            attempts = attempts[self._tokenize_form:self._tokenize_form + 1] if self._tokenize_form >= 0 else []
        for url, payload in attempts:
            try:
                with self._post(url, payload) as response:
                    body = json.loads(response.read())
            except (GenerationError, json.JSONDecodeError):
                continue
            if "count" in body or "tokens" in body:
                self._tokenize_form = 0 if "prompt" in payload else 1
                return int(body["count"]) if "count" in body else len(body["tokens"])
        self._tokenize_form = -1
        return int(len(text) / _FALLBACK_CHARS_PER_TOKEN)

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        # The chat template lives on the server; a few tokens per message cover its role markers.
        per_message_overhead = 5
        return sum(self.count_tokens(m["content"]) + per_message_overhead for m in messages)
