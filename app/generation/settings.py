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
    # llama.cpp threads for decoding (0 = every core) and for prompt evaluation (0 = n_threads).
    n_threads: int = Field(0, ge=0)
    n_threads_batch: int = Field(0, ge=0)
    # Prompt tokens llama.cpp evaluates per call (logical / physical batch): a grounded prompt (~300-1000 tokens)
    # in one batch is evaluated fastest (bench/RESULTS_TTFT.md).
    n_batch: int = Field(512, ge=1)
    n_ubatch: int = Field(512, ge=1)
    # Flash attention in llama.cpp; on CPU it mostly saves memory (measured in bench/RESULTS_TTFT.md).
    flash_attn: bool = False
    # Map the GGUF instead of reading it (fast start, pages shared between processes); mlock pins it in RAM.
    use_mmap: bool = True
    use_mlock: bool = False
    # Keep the evaluated state of the prompt prefix shared by every question (system prompt, instructions), per
    # language, so a question after a retry or a language switch does not evaluate it again (llama_cpp only; each
    # kept state holds llama-cpp-python's logits rows for the prefix too: ~70 MB for the packaged model).
    keep_prefix_state: bool = True
    # Greedy decoding by default: factual QA wants the most likely answer, not variety.
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(0.9, gt=0, le=1)
    # Sampling: keep the k most likely tokens (0 = all). Not retrieval's top_k, which counts passages; the old
    # name generation.top_k is still read from TOML files and DOCQA_GENERATION__TOP_K (app/config.py).
    sampling_top_k: int = Field(40, ge=0)
    repetition_penalty: float = Field(1.05, gt=0)
    no_repeat_ngram_size: int = Field(0, ge=0)
    max_new_tokens: int = Field(512, ge=1)
    seed: int = 0
