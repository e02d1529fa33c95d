"""Ranking metrics over document ids: hit@k, MRR, and whether an answer string is in the retrieved text."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

KS = (1, 3, 5, 10)
ANSWER_K = 5


@dataclass
class MethodScores:
    """Accumulates one retrieval method's results over questions."""

    hits: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    reciprocal_ranks: list[float] = field(default_factory=list)
    answer_in_context: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, ranked_doc_ids: list[str], gold: set[str], texts: list[str], answers: list[str],
            seconds: float | None = None) -> None:
        first = next((i for i, d in enumerate(ranked_doc_ids[:max(KS)]) if d in gold), None)
        for k in KS:
            self.hits[k] += first is not None and first < k
        self.reciprocal_ranks.append(0.0 if first is None else 1.0 / (first + 1))
        joined = "\n".join(texts[:ANSWER_K]).lower()
        self.answer_in_context += any(a.lower() in joined for a in answers)
        if seconds is not None:
            self.latencies.append(seconds)

    def summary(self) -> dict[str, float]:
        n = max(len(self.reciprocal_ranks), 1)
        out = {f"hit@{k}": self.hits[k] / n for k in KS}
        out["mrr@10"] = sum(self.reciprocal_ranks) / n
        out[f"answer@{ANSWER_K}"] = self.answer_in_context / n
        out["n"] = len(self.reciprocal_ranks)
        if self.latencies:
            out["median_ms"] = 1000 * statistics.median(self.latencies)
        return out
