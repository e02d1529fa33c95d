"""GGUF models on CPU (or GPU offload) through llama-cpp-python, with the chat template stored in the GGUF."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from app.generation.settings import GenerationSettings
from app.generation.base import GenerationError, Message, resolve_model
from app.generation.no_repeat_ngram import NoRepeatNGramProcessor


class LlamaCppGenerator:
    def __init__(self, llm, path: Path) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llm = llm
        self.name = path.name
        self.n_ctx = llm.n_ctx()
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise GenerationError(f"{path}: the GGUF carries no chat template (tokenizer.chat_template)")
        eos, bos = llm.token_eos(), llm.token_bos()
        vocab = llm._model
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.token_get_text(eos) if eos != -1 else "",
            bos_token=vocab.token_get_text(bos) if bos != -1 else "",
        )
        # One llama.cpp context cannot decode two prompts at once; concurrent callers take turns.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, settings: GenerationSettings, models_dir: Path) -> LlamaCppGenerator:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise GenerationError("the llama_cpp backend needs llama-cpp-python (pip install 'docqa[llama]')") from exc
        folder, gguf_file = resolve_model(settings, models_dir)
        path = Path(folder) / gguf_file if gguf_file else Path(folder)
        if not path.is_file():
            raise GenerationError(f"{path}: GGUF model file not found (GenerationSettings.model / gguf_file)")
        gpu_layers = 0 if settings.device == "cpu" else (-1 if settings.device.startswith("cuda") else 0)
        try:
            llm = Llama(model_path=str(path), n_ctx=settings.n_ctx, n_threads=settings.n_threads or os.cpu_count(),
                        n_gpu_layers=gpu_layers, seed=settings.seed, verbose=False)
        except ValueError as exc:
            raise GenerationError(f"{path}: llama.cpp could not load the model: {exc}") from exc
        return cls(llm, path)

    def _prompt_tokens(self, messages: list[Message]) -> list[int]:
        prompt = self._formatter(messages=messages).prompt
        # special=True: the template's own control tokens (<|im_start|>) must become control tokens; passage
        # text cannot smuggle one in because prompts/ escapes "<" and ">" inside passages.
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        return len(self._prompt_tokens(messages))

    def yes_probability(self, messages: list[Message], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        """P(the next token after the chat prompt starts one of ``yes``) / P(it starts one of ``yes`` or ``no``):
        a calibratable yes/no verdict from one forward pass (prompts/evidence_verification.py)."""
        import numpy as np

        tokens = self._prompt_tokens(messages)
        if len(tokens) >= self.n_ctx:
            raise GenerationError(f"{self.name}: prompt of {len(tokens)} tokens does not fit n_ctx={self.n_ctx}")

        def first_tokens(words: tuple[str, ...]) -> set[int]:
            return {self._llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0] for w in words}

        with self._lock:
            self._llm.reset()
            self._llm.eval(tokens)
            # llama-cpp-python 0.3 no longer copies logits into Llama.scores (only with logits_all): read the last
            # token's row from the context.
            logits = np.ctypeslib.as_array(self._llm._ctx.get_logits(), shape=(self._llm.n_vocab(),))
            logits = logits.astype(np.float64)
        probs = np.exp(logits - logits.max())
        p_yes = float(sum(probs[t] for t in first_tokens(yes)))
        p_no = float(sum(probs[t] for t in first_tokens(no)))
        return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        tokens = self._prompt_tokens(messages)
        if len(tokens) >= self.n_ctx:
            raise GenerationError(f"{self.name}: prompt of {len(tokens)} tokens does not fit n_ctx={self.n_ctx}")
        max_tokens = min(settings.max_new_tokens, self.n_ctx - len(tokens))
        processors = ([NoRepeatNGramProcessor(settings.no_repeat_ngram_size)]
                      if settings.no_repeat_ngram_size > 0 else None)
        with self._lock:
            for chunk in self._llm.create_completion(
                prompt=tokens, max_tokens=max_tokens, stream=True,
                temperature=max(settings.temperature, 0.0), top_p=settings.top_p, top_k=settings.top_k,
                min_p=0.0, repeat_penalty=settings.repetition_penalty, seed=settings.seed,
                logits_processor=processors,
            ):
                piece = chunk["choices"][0]["text"]
                if piece:
                    yield piece
