"""Refuse before generation when retrieval found nothing close enough to be evidence for an answer."""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.results import ScoredChunk

# Which ScoredChunk score the gate reads: "score" = the most refined stage available (rerank, else fused ...).
EVIDENCE_FIELDS = ("score", "dense", "rerank", "fused", "bm25")


@dataclass
class GateDecision:
    answerable: bool
    best_score: float
    reason: str = ""


def evidence_score(passage: ScoredChunk, field: str) -> float | None:
    if field not in EVIDENCE_FIELDS:
        raise ValueError(f"unknown evidence score {field!r}; use one of {', '.join(EVIDENCE_FIELDS)}")
    if field == "score":
        return passage.score
    return getattr(passage, f"{field}_score")


def best_evidence(passages: list[ScoredChunk], field: str) -> float | None:
    scores = [s for s in (evidence_score(p, field) for p in passages) if s is not None]
    return max(scores) if scores else None


def check_evidence(passages: list[ScoredChunk], min_score: float, field: str) -> GateDecision:
    """Answerable when the best passage's ``field`` score reaches ``min_score``."""
    best = best_evidence(passages, field)
    if best is None:
        return GateDecision(False, float("-inf"), "no passage was retrieved")
    if best < min_score:
        return GateDecision(False, best, f"best evidence score {best:.3f} is below the threshold {min_score:.3f}")
    return GateDecision(True, best)
