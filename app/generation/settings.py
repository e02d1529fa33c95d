"""Settings of the local LLM: which backend and model, its runtime, and the default decoding parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ingest.settings import SettingsSection

PACKAGED_LLM = "packaged:qwen2.5-coder-1.5b-instruct"


class GenerationSettings(SettingsSection):
    # "llama_cpp" (GGUF on CPU), "transformers" (any HF model, GPUs) or "openai" (an OpenAI-compatible server).
    backend: Literal["llama_cpp", "transformers", "openai"] = "llama_cpp"
    model: str = PACKAGED_LLM
    gguf_file: str = ""
    openai_base_url: str = "http://localhost:8000/v1"
    device: str = "auto"
    n_ctx: int = Field(4096, ge=256)
    n_threads: int = Field(0, ge=0)
    # Greedy decoding by default: factual QA wants the most likely answer, not variety.
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(0.9, gt=0, le=1)
    top_k: int = Field(40, ge=0)
    repetition_penalty: float = Field(1.05, gt=0)
    no_repeat_ngram_size: int = Field(0, ge=0)
    max_new_tokens: int = Field(512, ge=1)
    seed: int = 0
