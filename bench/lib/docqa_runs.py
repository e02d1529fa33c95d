"""Running docqa's answer pipeline over benchmark questions: one question's timed, scored row, and the question picks
(shared by bench/answer_bench.py and bench/ttft_bench.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path

from app.answer.answer_pipeline import (
    AnswerPipeline,
    DoneEvent,
    PassagesEvent,
    RetryEvent,
    TokenEvent,
)
from bench.lib.eval_data import Question, load_questions
from prompts.citations import parse_citations
from prompts.evidence_gate import best_evidence


def run_docqa(pipeline: AnswerPipeline, q: Question) -> dict:
    started = time.perf_counter()
    ttft = None
    raw = []
    answer = None
    evidence = None
    field = pipeline.settings.answer.evidence_score_field
    retried = False
    for event in pipeline.stream(q.question):
        if isinstance(event, PassagesEvent):
            evidence = best_evidence(event.passages, field)
        elif isinstance(event, TokenEvent):
            if ttft is None:
                ttft = time.perf_counter() - started
            raw.append(event.text)
        elif isinstance(event, RetryEvent):
            # The streamed draft is withdrawn: the text kept, and its first token, are the next attempt's.
            raw, retried, ttft = [], True, None
        elif isinstance(event, DoneEvent):
            answer = event.answer
    assert answer is not None
    gated = answer.refusal_reason.startswith("evidence gate")
    # Refusals decided before generation (evidence gate, name check) stream the refusal sentence at once: no TTFT.
    before_generation = "generate" not in answer.timings
    raw_text = "".join(raw)
    cited = parse_citations(raw_text)
    n_valid = len([n for n in cited if 1 <= n <= len(answer.passages)])
    return {"answer": answer.text, "raw": raw_text, "refused": answer.refused, "gated": gated, "evidence": evidence,
            "refusal_reason": answer.refusal_reason, "retried": retried,
            "ttft": None if before_generation else ttft, "tokens_per_s": answer.timings.get("tokens_per_s"),
            "seconds": time.perf_counter() - started, "citations": len(cited), "valid_citations": n_valid,
            "flagged": sum(not c.supported for c in answer.checks), "checked": len(answer.checks)}


def pick_questions(path: Path, answerable: int | None, unanswerable: int | None, seed: int) -> list[Question]:
    """All questions, or that many answerable / unanswerable ones drawn at random (fixed seed): on a CPU the
    LLM makes every question cost tens of seconds, and refusal rates need enough unanswerable questions."""
    questions = load_questions(path)
    rng = random.Random(seed)
    picked = []
    for wanted, group in ((unanswerable, [q for q in questions if not q.answerable]),
                          (answerable, [q for q in questions if q.answerable])):
        picked += group if wanted is None or wanted >= len(group) else rng.sample(group, wanted)
    return picked
