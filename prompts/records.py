"""What an answer looks like once generated and checked."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrieval.results import ScoredChunk


@dataclass
class Citation:
    number: int  # the [n] used in the answer and the prompt
    passage: ScoredChunk
    quoted_text: str  # the exact passage text the model saw
    # Where the quoted sentences sit in ``passage.text`` (start, end), when the model saw an excerpt of it.
    spans: tuple[tuple[int, int], ...] = ()


@dataclass
class SentenceCheck:
    sentence: str
    cited: list[int]
    support_score: float
    supported: bool


@dataclass
class Answer:
    question: str
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    # Passages considered (also for refusals, so the UI can show what was close).
    passages: list[ScoredChunk] = field(default_factory=list)
    checks: list[SentenceCheck] = field(default_factory=list)
    refusal_reason: str = ""
    language: str = "zh"
    # Seconds per stage: rewrite, retrieve, first_token, generate, check ...
    timings: dict[str, float] = field(default_factory=dict)
    # The question retrieved and judged: the message itself, or for a follow-up its standalone form (and how it
    # was made: app/answer/standalone_question.py).
    standalone_question: str = ""
    follow_up: str = ""
    # What the gates and checks measured on the way (prompts/checks/), named "<check>.<signal>": e.g.
    # "evidence_score.best_score", "verification.p_yes", "lexical_support.score".
    signals: dict[str, float] = field(default_factory=dict)
    # A refusal's withdrawn draft as the checks left it (what the model answered and why it was not shown: see
    # refusal_reason); "" when none was written or it was shown.
    withdrawn: str = ""
