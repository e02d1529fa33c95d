"""A conversation so far, as the answer pipeline receives it: earlier questions, answers and what they cited."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrieval.results import ScoredChunk


@dataclass
class Turn:
    """One earlier exchange. ``passages`` are the passages its answer cited; empty when unknown (e.g. a turn that
    an HTTP client sends back as plain text)."""

    question: str
    answer: str
    passages: list[ScoredChunk] = field(default_factory=list)
