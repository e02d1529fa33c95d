"""Run the ordered gates or checks: each sees the draft as the checks before it left it; the first that does not
pass decides the refusal. Every verdict is kept (with its signals and seconds) for whoever wants to weigh them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from prompts.checks.base import AnswerCheck, Draft, PassageGate, Question, Verdict
from prompts.records import SentenceCheck
from prompts.templates import PackedPassage
from retrieval.results import ScoredChunk


@dataclass
class CheckRun:
    """The outcome of a list of gates or checks."""

    # The draft as the last check that ran left it (None for gates).
    draft: Draft | None
    # (name, verdict) of every part that ran, in order.
    verdicts: list[tuple[str, Verdict]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def refusal(self) -> Verdict | None:
        """The verdict that refused, or None when every part passed."""
        return next((v for _, v in self.verdicts if not v.passed), None)

    @property
    def sentence_checks(self) -> list[SentenceCheck]:
        return [s for _, v in self.verdicts for s in v.sentence_checks]

    @property
    def signals(self) -> dict[str, float]:
        """Every verdict's signals, named ``<check>.<signal>``."""
        return {f"{name}.{key}": value for name, v in self.verdicts for key, value in v.signals.items()}


def run_checks(checks: Sequence[AnswerCheck], draft: Draft, question: Question, passages: Sequence[PackedPassage],
               until_refused: bool = True) -> CheckRun:
    """Run ``checks`` in order until one refuses (the pipeline's rule), or all of them with ``until_refused=False``
    (for a decision that weighs every verdict's signals; ``refusal`` is then still the first refusing one)."""
    run = CheckRun(draft)
    for check in checks:
        start = time.perf_counter()
        verdict = check.check(run.draft, question, passages)
        run.seconds[check.name] = time.perf_counter() - start
        run.verdicts.append((check.name, verdict))
        run.draft = verdict.draft or run.draft
        if not verdict.passed and until_refused:
            break
    return run


def run_gates(gates: Sequence[PassageGate], question: Question, passages: Sequence[PackedPassage],
              retrieved: Sequence[ScoredChunk]) -> CheckRun:
    """Run ``gates`` in order until one refuses."""
    run = CheckRun(None)
    for gate in gates:
        start = time.perf_counter()
        verdict = gate.check_passages(question, passages, retrieved)
        run.seconds[gate.name] = time.perf_counter() - start
        run.verdicts.append((gate.name, verdict))
        if not verdict.passed:
            break
    return run
