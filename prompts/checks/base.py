"""The interface every answer check and passage gate implements, and what they exchange.

A check reads a ``Draft`` (the model's answer as repaired so far), the ``Question`` it answers and the numbered
passages the model saw, and returns a ``Verdict``: passed or refused with a human reason, the draft as it leaves
the check (a check may repair it: drop invalid citations, quote the cited sentence for a bare "[1]"), numeric
signals for a later decision stage, an optional fixable defect (what asking the model once more should fix), and
per-sentence findings to show with the answer. A gate does the same for the passages alone, before any model call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from prompts.records import SentenceCheck
from prompts.templates import PackedPassage
from retrieval.results import ScoredChunk


@dataclass(frozen=True)
class Question:
    """What the checks judge an answer against."""

    # The message, or a follow-up's standalone form (the question that was searched for and answered).
    text: str
    language: str
    # Per-question values of check settings chosen with the question (e.g. the sidebar's min_evidence_score),
    # by setting name; a check falls back to its configured value.
    overrides: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Draft:
    """The model's answer on its way through the checks."""

    text: str
    # Written after a refusal, without the option to refuse (the small model then fills gaps with figures).
    retried: bool = False
    # Written from the first pass's best passages only (held to a stricter verification).
    first_pass: bool = False
    # How a refusal reason names the text: "the answer", or "the quoted sentence" once a bare marker was
    # replaced by the sentence it points at.
    described_as: str = "the answer"


@dataclass(frozen=True)
class Verdict:
    """What one check found."""

    passed: bool
    # The draft as it leaves the check (repaired or as it came).
    draft: Draft | None = None
    # Why it did not pass, in words a user can read (empty when it passed).
    reason: str = ""
    # Measurements a decision stage can weigh (e.g. {"p_yes": 0.83}, {"lexical_support": 0.9}).
    signals: Mapping[str, float] = field(default_factory=dict)
    # A defect the model could fix if asked once more ("the answer gives no unit"); empty when there is none.
    defect: str = ""
    # Per-sentence findings shown with the answer (the sentence-support scores).
    sentence_checks: tuple[SentenceCheck, ...] = ()

    @classmethod
    def ok(cls, draft: Draft | None = None, **found) -> Verdict:
        return cls(True, draft, **found)

    @classmethod
    def refuse(cls, reason: str, draft: Draft | None = None, **found) -> Verdict:
        return cls(False, draft, reason, **found)


@runtime_checkable
class AnswerCheck(Protocol):
    """Judges (and may repair) a draft answer against the passages the model saw."""

    name: str

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict: ...


@runtime_checkable
class PassageGate(Protocol):
    """Judges, before the model is called, whether the passages can answer the question at all. ``passages`` are
    the ones packed into the prompt, ``retrieved`` everything retrieval returned."""

    name: str

    def check_passages(self, question: Question, passages: Sequence[PackedPassage],
                       retrieved: Sequence[ScoredChunk]) -> Verdict: ...


class WarmsPrompts(Protocol):
    """A check that asks the LLM a prompt of its own can name it, so the generator evaluates its fixed part
    while the face is loading (``AnswerPipeline.warm_up``)."""

    def warm_prompts(self, language: str) -> list[list[dict]]: ...
