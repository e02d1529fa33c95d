"""A configured generator as the checks' ``ShortWriter`` (prompts/span_extraction.py): one greedy reply of a few
tokens, with the generation settings otherwise as configured."""

from __future__ import annotations

from app.generation.base import Generator
from app.generation.settings import GenerationSettings


class ShortReplyWriter:
    def __init__(self, generator: Generator, settings: GenerationSettings) -> None:
        self.generator = generator
        self.settings = settings

    def write(self, messages: list[dict], max_new_tokens: int) -> str:
        greedy = self.settings.replace(max_new_tokens=max_new_tokens, temperature=0.0)
        return "".join(self.generator.stream(messages, greedy)).strip()
