"""One calibrated decision instead of a chain of vetoes: the answer's signals (prompts/answer_signals.py) combined
into one acceptance score, a logistic model fitted on the tuning half of the development sets
(bench/fit_acceptance.py), and a threshold chosen there for a stated share of right answers refused. The
coefficients and the threshold are settings (AnswerSettings.acceptance), with their provenance beside them."""

from __future__ import annotations

import math

from prompts.answer_signals import AnswerSignals
from prompts.settings import AcceptanceModel

# p(yes) is kept away from 0 and 1 before its log-odds are taken: the model's verdicts saturate.
_P_FLOOR = 1e-3
__all__ = ["AGAINST", "FEATURES", "AcceptanceModel", "acceptance_score", "against", "features"]

# Evidence against the answer refuses it outright (issue #25): the cited sentences name another year, date or
# relative time, give their count in another unit, or give no number for a "how many" — the rule the issue sets,
# and too rare in the development sets for a weight to be fitted. A name the cited passage never writes is weaker
# evidence (the passage may name its subject in Chinese, "地区生产总值" for "GDP"): a feature, weighed.
AGAINST = frozenset({"year", "date", "relative_time", "unit", "relation"})
FEATURES = ("evidence_logit", "claim_logit", "conflict_name", "low_lexical_support", "shape_mismatch",
            "cross_language", "retried", "quoted")


def against(signals: AnswerSignals) -> list[str]:
    """What the cited evidence says against the answer (refusal reasons), by constraint kind."""
    return [reason for kind, reason in signals.conflicts.items() if kind in AGAINST]


def _logit(p: float | None) -> float:
    if p is None:
        return 0.0
    p = min(1 - _P_FLOOR, max(_P_FLOOR, p))
    return math.log(p / (1 - p))


def features(signals: AnswerSignals, model: AcceptanceModel) -> dict[str, float]:
    low_support = (signals.lexical_support is not None and signals.lexical_tokens >= model.min_lexical_tokens
                   and signals.lexical_support < model.low_lexical_support)
    return {"evidence_logit": _logit(signals.p_yes_evidence), "claim_logit": _logit(signals.p_yes_claim),
            "conflict_name": float("name" in signals.conflicts),
            "low_lexical_support": float(low_support),
            "shape_mismatch": float(signals.shape_mismatch), "cross_language": float(signals.cross_language),
            "retried": float(signals.retried), "quoted": float(signals.quoted)}


def acceptance_score(signals: AnswerSignals, model: AcceptanceModel) -> float:
    x = features(signals, model)
    z = model.intercept + sum(w * x.get(name, 0.0) for name, w in model.weights.items())
    return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))
