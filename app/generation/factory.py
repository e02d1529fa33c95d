"""Picks the configured LLM backend and loads it once per process (the backends import base, never this)."""

from __future__ import annotations

import threading
from pathlib import Path

from app.generation.base import GenerationError, Generator
from app.generation.settings import GenerationSettings

_cache: dict[tuple, Generator] = {}
_cache_lock = threading.Lock()


def _load_key(settings: GenerationSettings, models_dir: Path) -> tuple:
    # Only what changes the loaded weights/runtime; decoding parameters are given per call.
    return (settings.backend, settings.model, settings.gguf_file, settings.openai_base_url, settings.device,
            settings.n_ctx, settings.n_threads, settings.n_threads_batch, settings.n_batch, settings.n_ubatch,
            settings.flash_attn, settings.use_mmap, settings.use_mlock, settings.keep_prefix_state, str(models_dir))


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
