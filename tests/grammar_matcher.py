"""Whether llama.cpp's own grammar engine admits a text: the text is tokenised with a real vocabulary and fed token
by token through a grammar sampler, as constrained decoding would sample it, and must then admit the end token."""

from __future__ import annotations

import ctypes
import math
from pathlib import Path


class GrammarMatcher:
    def __init__(self, gguf_path: Path) -> None:
        from llama_cpp import Llama

        # The vocabulary only: no weights are loaded.
        self._llm = Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
        self._vocab = self._llm._model.vocab
        self._end = self._llm.token_eos()

    def compiles(self, grammar: str) -> bool:
        import llama_cpp

        sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
        return bool(sampler)

    def admits(self, grammar: str, text: str) -> bool:
        import llama_cpp

        sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, grammar.encode("utf-8"), b"root")
        assert sampler, "the grammar does not compile"
        try:
            for token in self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True):
                if not self._allowed(sampler, token):
                    return False
                # Only ever accept an allowed token: llama.cpp aborts on one that leaves the grammar.
                llama_cpp.llama_sampler_accept(sampler, token)
            return self._allowed(sampler, self._end)
        finally:
            llama_cpp.llama_sampler_free(sampler)

    @staticmethod
    def _allowed(sampler, token: int) -> bool:
        import llama_cpp

        data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
        candidates = llama_cpp.llama_token_data_array(data, 1, -1, False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
        return not math.isinf(data[0].logit)
