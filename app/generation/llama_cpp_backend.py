"""GGUF models on CPU (or GPU offload) through llama-cpp-python, with the chat template stored in the GGUF."""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from app.generation.base import GenerationError, Message, resolve_model
from app.generation.no_repeat_ngram import NoRepeatNGramProcessor
from app.generation.settings import GenerationSettings


class LlamaCppGenerator:
    def __init__(self, llm, path: Path, keep_prefix_state: bool = True) -> None:
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
        # Evaluated states of prompt prefixes every question shares (warm_up): (prefix tokens, llama state).
        self._keep_prefix_state = keep_prefix_state
        self._prefix_states: list[tuple[list[int], object]] = []
        # The evaluated context a yes/no prompt replaced (tokens, llama.cpp state bytes): the answer pipeline
        # verifies a first-pass answer and may then ask again over more passages, a prompt that starts with it.
        self._replaced_context: tuple[list[int], bytes] | None = None
        # Prompt tokens the last call found already evaluated (kept prefix, replaced context or llama.cpp's own
        # reuse) and did not evaluate again.
        self.reused_prompt_tokens = 0
        # First byte of each token's text (0: none), and masks built from it (leading_char_probability).
        self._leading_bytes = None
        self._leading_masks: dict[str, tuple] = {}

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
            threads = settings.n_threads or os.cpu_count()
            llm = Llama(model_path=str(path), n_ctx=settings.n_ctx, n_threads=threads,
                        n_threads_batch=settings.n_threads_batch or threads, n_batch=settings.n_batch,
                        n_ubatch=settings.n_ubatch, flash_attn=settings.flash_attn, use_mmap=settings.use_mmap,
                        use_mlock=settings.use_mlock, n_gpu_layers=gpu_layers, seed=settings.seed, verbose=False)
        except ValueError as exc:
            raise GenerationError(f"{path}: llama.cpp could not load the model: {exc}") from exc
        return cls(llm, path, settings.keep_prefix_state)

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

        def first_tokens(words: tuple[str, ...]) -> set[int]:
            return {self._llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0] for w in words}

        probs = self._next_token_probabilities(messages)
        p_yes = float(sum(probs[t] for t in first_tokens(yes)))
        p_no = float(sum(probs[t] for t in first_tokens(no)))
        return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.5

    def leading_char_probability(self, messages: list[Message], chars: str) -> float:
        """P(the reply's first visible character is one of ``chars``), from one forward pass: the probability mass
        of the first tokens whose text starts (after white space) with one of them, over the mass of all tokens
        with visible text. White-space-only and control tokens say nothing either way and are left out. The
        prompt stays evaluated, so decoding the reply next evaluates nothing again."""
        probs = self._next_token_probabilities(messages)
        visible, starting = self._leading_byte_masks(chars)
        total = float(probs[visible].sum())
        return float(probs[starting].sum()) / total if total > 0 else 0.0

    def _leading_byte_masks(self, chars: str):
        """(tokens with visible text, tokens whose text starts with one of ``chars``) as boolean arrays; the
        vocabulary is read once (~1 s), the masks once per ``chars``."""
        import numpy as np

        if chars not in self._leading_masks:
            if self._leading_bytes is None:
                # Control tokens detokenize to nothing; byte-level pieces of a longer character still show their
                # first byte, which is never one of the ASCII ``chars``.
                self._leading_bytes = np.array(
                    [(self._llm.detokenize([t]).lstrip() or b"\0")[0] for t in range(self._llm.n_vocab())],
                    dtype=np.uint8)
            wanted = np.frombuffer(chars.encode("ascii"), dtype=np.uint8)
            self._leading_masks[chars] = (self._leading_bytes != 0, np.isin(self._leading_bytes, wanted))
        return self._leading_masks[chars]

    def _next_token_probabilities(self, messages: list[Message]):
        """The distribution of the first reply token after the chat prompt (float64, over the vocabulary)."""
        import numpy as np

        tokens = self._prompt_tokens(messages)
        if len(tokens) >= self.n_ctx:
            raise GenerationError(f"{self.name}: prompt of {len(tokens)} tokens does not fit n_ctx={self.n_ctx}")
        with self._lock:
            llm = self._llm
            self._keep_replaced_context()
            self._restore_prefix(tokens)
            # Evaluate only what the context does not hold yet; at least the last token, whose logits are read.
            shared = min(llm.longest_token_prefix(llm._input_ids.tolist(), tokens) if llm.n_tokens else 0,
                         len(tokens) - 1)
            self.reused_prompt_tokens = shared
            llm.n_tokens = shared
            llm.eval(tokens[shared:])
            # llama-cpp-python 0.3 no longer copies logits into Llama.scores (only with logits_all): read the last
            # token's row from the context.
            logits = np.ctypeslib.as_array(self._llm._ctx.get_logits(), shape=(self._llm.n_vocab(),))
            logits = logits.astype(np.float64)
        probs = np.exp(logits - logits.max())
        return probs / probs.sum()

    def warm_up(self, examples: list[list[Message]]) -> int:
        """Evaluate the prompt prefix the ``examples`` (two or more prompts that differ only in what changes per
        question) share, and keep its state: a later prompt starting with it evaluates only the rest, even after
        other prompts (a retry, another language) were evaluated in between. Returns the prefix length."""
        prompts = [self._prompt_tokens(m) for m in examples]
        prefix = prompts[0]
        for other in prompts[1:]:
            same = 0
            while same < min(len(prefix), len(other)) and prefix[same] == other[same]:
                same += 1
            prefix = prefix[:same]
        if not prefix:
            return 0
        with self._lock:
            self._llm.reset()
            self._replaced_context = None
            self._llm.eval(prefix)
            # llama-cpp-python restores a state's logits rows into a buffer of n_batch rows: a longer prefix cannot
            # be kept (it is still evaluated now, and reused while nothing else was evaluated in between).
            if self._keep_prefix_state and len(prefix) <= self._llm.n_batch:
                self._prefix_states = [(p, s) for p, s in self._prefix_states if p != prefix]
                self._prefix_states.append((prefix, self._llm.save_state()))
        return len(prefix)

    def forget_context(self) -> None:
        """Drop the evaluated context, and any a yes/no prompt replaced (the kept prefix states stay): the next
        prompt is read as a new question's would be, sharing nothing with the previous one but the kept prefix
        (benchmarks compare systems fairly)."""
        with self._lock:
            self._llm.reset()
            self._replaced_context = None

    def _keep_replaced_context(self) -> None:
        """Copy the evaluated context (KV cache, ~30 KB per token) before a yes/no prompt replaces it."""
        import llama_cpp

        llm = self._llm
        if not self._keep_prefix_state or not llm.n_tokens:
            return
        size = llama_cpp.llama_state_get_size(llm._ctx.ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(llm._ctx.ctx, buffer, size)
        self._replaced_context = (llm._input_ids.tolist(), bytes(memoryview(buffer)[:written]))

    def _restore_prefix(self, tokens: list[int]) -> None:
        """Load the kept state sharing the most leading tokens with ``tokens`` (a kept prefix, or the context a
        yes/no prompt replaced) when it shares more than what the context holds now; llama.cpp then drops the
        state's tokens past the shared part and evaluates only the rest of the prompt."""
        import llama_cpp

        llm = self._llm
        current = llm.longest_token_prefix(llm._input_ids.tolist(), tokens) if llm.n_tokens else 0
        shared, state = max(((llm.longest_token_prefix(p, tokens), s) for p, s in self._prefix_states),
                            key=lambda item: item[0], default=(0, None))
        replaced = self._replaced_context
        if replaced is not None and llm.longest_token_prefix(replaced[0], tokens) > max(shared, current):
            # Only the KV cache and the token ids: the logits of those positions are never read again (llama.cpp
            # evaluates at least the prompt's last token).
            ids, data = replaced
            if llama_cpp.llama_state_set_data(llm._ctx.ctx, (ctypes.c_uint8 * len(data)).from_buffer_copy(data),
                                              len(data)) == len(data):
                llm.input_ids[:len(ids)] = ids
                llm.n_tokens = len(ids)
                llm._requires_eval = True  # the logits are not those of the last id: never sample from them
                return
        if state is not None and shared > current:
            llm.load_state(state)

    def stream(self, messages: list[Message], settings: GenerationSettings) -> Iterator[str]:
        return self._stream(messages, settings, None)

    def stream_constrained(self, messages: list[Message], settings: GenerationSettings,
                           grammar: str) -> Iterator[str]:
        """``stream`` with every sampled token restricted to those that keep the text inside ``grammar`` (GBNF,
        root rule ``root``); the end token is allowed only once the text is complete under it."""
        return self._stream(messages, settings, self._compiled(grammar))

    def _compiled(self, grammar: str):
        """``grammar`` as a LlamaGrammar, checked first: llama.cpp answers a grammar it cannot parse with a null
        sampler, which would crash the process when added to the sampler chain."""
        import llama_cpp
        from llama_cpp import LlamaGrammar

        sampler = llama_cpp.llama_sampler_init_grammar(self._llm._model.vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            raise GenerationError(f"{self.name}: llama.cpp cannot parse the grammar:\n{grammar[:2000]}")
        llama_cpp.llama_sampler_free(sampler)
        return LlamaGrammar.from_string(grammar, verbose=False)

    def _stream(self, messages: list[Message], settings: GenerationSettings, grammar) -> Iterator[str]:
        tokens = self._prompt_tokens(messages)
        if len(tokens) >= self.n_ctx:
            raise GenerationError(f"{self.name}: prompt of {len(tokens)} tokens does not fit n_ctx={self.n_ctx}")
        max_tokens = min(settings.max_new_tokens, self.n_ctx - len(tokens))
        processors = ([NoRepeatNGramProcessor(settings.no_repeat_ngram_size)]
                      if settings.no_repeat_ngram_size > 0 else None)
        with self._lock:
            self._restore_prefix(tokens)
            llm = self._llm
            self.reused_prompt_tokens = llm.longest_token_prefix(llm._input_ids.tolist(), tokens[:-1]) \
                if llm.n_tokens else 0
            for chunk in llm.create_completion(
                prompt=tokens, max_tokens=max_tokens, stream=True,
                temperature=max(settings.temperature, 0.0), top_p=settings.top_p, top_k=settings.sampling_top_k,
                min_p=0.0, repeat_penalty=settings.repetition_penalty, seed=settings.seed,
                logits_processor=processors, grammar=grammar,
            ):
                piece = chunk["choices"][0]["text"]
                if piece:
                    yield piece
