"""The Generator protocol every LLM backend implements, and the per-process loader that picks a backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from app.config import PACKAGED_LLM, GenerationSettings
from app.generation.packaged_model import packaged_model_path

Message = dict[str, str]


class GenerationError(RuntimeError):
    """A model could not be loaded or failed while generating (the message names the model and the problem)."""


class Generator(Protocol):
    name: str
    # Context window in tokens (prompt + answer).
    n_ctx: int

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        """Apply the model's chat template to ``messages`` and yield the answer text piece by piece, decoding
        with the temperature / top-p / top-k / penalties / max_new_tokens of ``settings``."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the model's own tokenizer (no special tokens added)."""
        ...

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the full prompt after the chat template (with the generation prompt) is applied."""
        ...


def resolve_model(settings: GenerationSettings, models_dir: Path) -> tuple[str, str]:
    """(model path or name, gguf file name or "") for the configured model; the packaged LLM is assembled
    under ``models_dir`` on first use."""
    if settings.model == PACKAGED_LLM:
        path = packaged_model_path(models_dir)
        return str(path.parent), path.name
    return settings.model, settings.gguf_file


_cache: dict[tuple, Generator] = {}
_cache_lock = threading.Lock()


def _load_key(settings: GenerationSettings, models_dir: Path) -> tuple:
    # Only what changes the loaded weights/runtime; decoding parameters are given per call.
    return (settings.backend, settings.model, settings.gguf_file, settings.openai_base_url, settings.device,
            settings.n_ctx, settings.n_threads, str(models_dir))


def load_generator(settings: GenerationSettings, models_dir: Path) -> Generator:
    """The generator for ``settings``, loaded once per process and shared afterwards."""
    key = _load_key(settings, models_dir)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _create(settings, models_dir)
        return _cache[key]


def _create(settings: GenerationSettings, models_dir: Path) -> Generator:
    if settings.backend == "llama_cpp":
        from app.generation.llama_cpp_backend import LlamaCppGenerator

        return LlamaCppGenerator.load(settings, models_dir)
    if settings.backend == "transformers":
        from app.generation.transformers_backend import TransformersGenerator

        return TransformersGenerator.load(settings, models_dir)
    if settings.backend == "openai":
        from app.generation.openai_backend import OpenAICompatibleGenerator

        return OpenAICompatibleGenerator(settings)
    raise GenerationError(f"unknown generation backend {settings.backend!r}; use llama_cpp, transformers or openai")
