"""No-repeat n-gram blocking for backends that lack it (llama.cpp), applied to the generated tokens only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def banned_next_tokens(tokens: Sequence[int], n: int) -> set[int]:
    """Tokens that would complete an n-gram already present in ``tokens`` (the generated continuation)."""
    if n <= 0 or len(tokens) < n - 1:
        return set()
    if n == 1:
        return set(tokens)
    prefix = tuple(tokens[len(tokens) - (n - 1):])
    return {tokens[i + n - 1] for i in range(len(tokens) - n + 1) if tuple(tokens[i:i + n - 1]) == prefix}


class NoRepeatNGramProcessor:
    """A llama-cpp-python logits processor: ``(input_ids, scores) -> scores`` with banned tokens at -inf.

    Unlike transformers' built-in processor it ignores n-grams of the prompt: a grounded answer should be free to
    quote phrases from the passages it was given, only its own repetition loops are blocked. The prompt length is
    taken from the first call (made before any token is generated), so use one instance per generation.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._prompt_len: int | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._prompt_len is None:
            self._prompt_len = len(input_ids)
        banned = banned_next_tokens(list(input_ids[self._prompt_len:]), self.n)
        if banned:
            scores = scores.copy()
            scores[list(banned)] = -np.inf
        return scores
