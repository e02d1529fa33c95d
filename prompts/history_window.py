"""Bound the conversation by tokens: the newest turns are kept, the oldest drop first."""

from __future__ import annotations

from collections.abc import Callable

from prompts.conversation import Turn
from prompts.templates import quote_as_data

TokenCounter = Callable[[str], int]
# Role markers and separators of one user/assistant pair in a chat template.
TURN_OVERHEAD_TOKENS = 10


def fit_history(history: list[Turn], budget_tokens: int, count_tokens: TokenCounter) -> list[Turn]:
    """The longest run of the most recent turns (oldest first, as given) whose question and answer fit
    ``budget_tokens``; a turn that does not fit ends the run, so no gap is left in the middle."""
    kept: list[Turn] = []
    remaining = budget_tokens
    for turn in reversed(history):
        cost = count_tokens(turn.question) + count_tokens(turn.answer) + TURN_OVERHEAD_TOKENS
        if cost > remaining:
            break
        kept.append(turn)
        remaining -= cost
    return kept[::-1]


def with_history(messages: list[dict], history: list[Turn]) -> list[dict]:
    """``messages`` (system, then the user's grounded question) with the earlier turns as user/assistant pairs
    between them. Earlier text is quoted as data, like passages: an answer may echo a document."""
    turns = [m for t in history for m in ({"role": "user", "content": quote_as_data(t.question)},
                                          {"role": "assistant", "content": quote_as_data(t.answer)})]
    return messages[:1] + turns + messages[1:]
