"""Fit the best passages into a token budget measured with the model's own tokenizer: whole passages cut only at
sentence ends (``pack_passages``), or the sentences of each that bear on the question (``pack_sentences``)."""

from __future__ import annotations

from collections.abc import Callable

from prompts.sentence_selection import Excerpt, question_tokens, select_excerpts
from prompts.sentences import sentence_spans
from prompts.templates import PackedPassage, render_passage
from retrieval.results import ScoredChunk

TokenCounter = Callable[[str], int]


def prompt_budget(context_budget_tokens: int, n_ctx: int, max_new_tokens: int, overhead_tokens: int) -> int:
    """Tokens left for passages: the configured budget, but never so much that the prompt plus the answer
    (``max_new_tokens``) would overflow the model's context window ``n_ctx``."""
    return max(0, min(context_budget_tokens, n_ctx - max_new_tokens - overhead_tokens))


def _longest_fitting_prefix(number: int, passage: ScoredChunk, text: str, budget: int,
                            count: TokenCounter) -> str | None:
    """The longest sentence-aligned prefix of ``text`` whose block fits ``budget`` (binary search over ends)."""
    ends = [end for _, end in sentence_spans(text)]
    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        prefix = text[:ends[mid]].rstrip()
        if count(render_passage(number, passage, prefix)) <= budget:
            best, lo = prefix, mid + 1
        else:
            hi = mid - 1
    return best


def pack_passages(passages: list[ScoredChunk], budget_tokens: int, count_tokens: TokenCounter) -> list[PackedPassage]:
    """Number and keep passages in the given (best-first) order while their rendered blocks fit the budget.

    A passage that does not fit whole is trimmed to its longest sentence-aligned prefix that does; if not even
    its first sentence fits, it is skipped and later (shorter) passages may still fill the room.
    """
    packed: list[PackedPassage] = []
    remaining = budget_tokens
    for passage in passages:
        number = len(packed) + 1
        text = passage.text.strip()
        if not text:
            continue
        cost = count_tokens(render_passage(number, passage, text)) + 1  # +1: the newline joining blocks
        if cost <= remaining:
            packed.append(PackedPassage(number, passage, text))
            remaining -= cost
            continue
        prefix = _longest_fitting_prefix(number, passage, text, remaining - 1, count_tokens)
        if prefix:
            packed.append(PackedPassage(number, passage, prefix, trimmed=True))
            remaining -= count_tokens(render_passage(number, passage, prefix)) + 1
    return packed


def pack_sentences(passages: list[ScoredChunk], question: str, budget_tokens: int, count_tokens: TokenCounter,
                   focus: int, neighbours: int) -> list[PackedPassage]:
    """Like ``pack_passages`` but each passage contributes only the sentences that bear on ``question``
    (prompts/sentence_selection.py), so the same evidence costs far fewer prompt tokens.

    Breadth first: every passage (best first) gets its leanest excerpt (its best sentence) while the budget lasts;
    then, best passage first, each is enriched to the richest excerpt the room left allows (``focus``
    best-matching sentences with ``neighbours`` either side)."""
    wanted = question_tokens(question)
    chosen: list[tuple[int, ScoredChunk, list[Excerpt], int, int]] = []  # number, passage, candidates, pick, cost
    remaining = budget_tokens

    def cost(number: int, passage: ScoredChunk, excerpt: Excerpt) -> int:
        return count_tokens(render_passage(number, passage, excerpt.text)) + 1  # +1: the joining newline

    for passage in passages:
        candidates = select_excerpts(passage.text, wanted, focus, neighbours)
        if not candidates:
            continue
        number = len(chosen) + 1
        leanest = cost(number, passage, candidates[-1])
        if leanest <= remaining:
            chosen.append((number, passage, candidates, len(candidates) - 1, leanest))
            remaining -= leanest
    for slot, (number, passage, candidates, pick, spent) in enumerate(chosen):
        for richer in range(pick):
            extra = cost(number, passage, candidates[richer]) - spent
            if extra <= remaining:
                chosen[slot] = (number, passage, candidates, richer, spent + extra)
                remaining -= extra
                break
    packed = []
    for number, passage, candidates, pick, _ in chosen:
        excerpt = candidates[pick]
        whole = excerpt.text == passage.text.strip()
        packed.append(PackedPassage(number, passage, excerpt.text, trimmed=not whole,
                                    spans=() if whole else excerpt.spans))
    return packed
