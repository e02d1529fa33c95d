"""A stand-in LLM for tests and benchmarks of the faces' own logic (server queue, streaming, uploads), importable
by both — neither reaches into the other's folder — as ``langchain_core`` ships its fake chat models. It answers
without a model: the first sentence of the best passage, cited. Nothing in the product uses it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from app.generation.settings import GenerationSettings


class QuotingGenerator:
    """Answers with the first sentence of passage [1] and its marker, in small pieces, ``token_delay`` seconds
    apart; ``padding`` extra pieces before the answer make a generation last longer (queue tests)."""

    name = "quoting-fake"
    n_ctx = 4096

    def __init__(self, token_delay: float = 0.0, padding: int = 0) -> None:
        self.token_delay, self.padding = token_delay, padding

    def stream(self, messages: list[dict], settings: GenerationSettings) -> Iterator[str]:
        prompt = "\n".join(m["content"] for m in messages)
        passages = re.findall(r"<passage id=(\d+)[^>]*>(.*?)</passage>", prompt, re.S)
        if not passages:
            yield "NO PASSAGES"
            return
        number, body = passages[0]
        sentence = re.split(r"(?<=[。！？.!?])", body.strip(), maxsplit=1)[0].strip()
        answer = f"{sentence} [{number}]"
        pieces = [""] * self.padding + [answer[i:i + 4] for i in range(0, len(answer), 4)]
        for piece in pieces:
            if self.token_delay:
                time.sleep(self.token_delay)
            yield piece

    def count_tokens(self, text: str) -> int:
        return len(text)

    def count_prompt_tokens(self, messages: list[dict]) -> int:
        return sum(len(m["content"]) + 4 for m in messages)
