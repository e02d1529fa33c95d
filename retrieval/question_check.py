"""The bound every entry point puts on a question or query before any model sees it (empty or too long)."""

from __future__ import annotations

from ingest.settings import LimitSettings


class QuestionError(ValueError):
    """The question cannot be asked as given (empty or too long); the message says why."""


def validate_question(question: str, limits: LimitSettings) -> str:
    """``question`` stripped, or QuestionError when it is empty or longer than ``limits.max_question_chars``."""
    text = question.strip()
    if not text:
        raise QuestionError("the question is empty")
    if len(text) > limits.max_question_chars:
        raise QuestionError(f"the question has {len(text)} characters; the limit is {limits.max_question_chars} "
                            f"(limits.max_question_chars) — shorten it")
    return text
