"""One calibrated decision instead of a chain of vetoes (``[answer] decision = "acceptance"``): every check runs
(prompts/checks/run.py, ``until_refused=False``) and the signals of their verdicts are combined into one acceptance
score, a logistic model fitted on the tuning half of the development sets (bench/fit_acceptance.py) with a threshold
chosen there for a stated share of right answers refused. The coefficients and the threshold are settings
(AnswerSettings.acceptance), with their provenance beside them.

Two kinds of verdict still refuse whatever the score: the checks named in ``acceptance.vetoes`` (a second answer
that invents a figure) and evidence against the answer (prompts/checks/constraints.py's ``conflict_<kind>`` for the
kinds in AGAINST: the cited sentences name another year, date, relative time, edition or measure ("figure"),
only other roles ("role") or only a sibling of the asked name ("variant": Top-p for Top-k), or give their count in
another unit) — the rule issue #25 sets, and too rare in the development sets for a weight to be fitted."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from prompts.checks.base import Draft
from prompts.checks.run import CheckRun
from prompts.settings import AcceptanceModel

# p(yes) is kept away from 0 and 1 before its log-odds are taken: the model's verdicts saturate.
_P_FLOOR = 1e-3
AGAINST = frozenset({"year", "date", "relative_time", "unit", "relation", "figure", "role", "variant"})
FEATURES = ("evidence_logit", "claim_logit", "conflict_name", "low_lexical_support", "shape_mismatch",
            "cross_language", "retried", "quoted")


@dataclass(frozen=True)
class Acceptance:
    """The decision on one checked draft: kept or refused (with the reason), its score and its features."""

    accepted: bool
    score: float
    features: dict[str, float]
    reason: str = ""
    # Refused whatever the score: a veto or evidence against the answer.
    overruled: bool = False

    @property
    def signals(self) -> dict[str, float]:
        """What the answer's signals record of it: the score, the features it was computed from, and whether a veto
        or evidence against the answer overruled it (bench/fit_acceptance.py fits on the rest)."""
        return {"score": self.score, **self.features, "overruled": float(self.overruled)}


def _logit(p: float | None) -> float:
    if p is None:
        return 0.0
    p = min(1 - _P_FLOOR, max(_P_FLOOR, p))
    return math.log(p / (1 - p))


def features(signals: Mapping[str, float], model: AcceptanceModel, retried: bool, quoted: bool,
             cross_language: bool) -> dict[str, float]:
    """The features of a draft from its checks' signals (named ``<check>.<signal>``, CheckRun.signals)."""
    support, tokens = signals.get("lexical_support.score"), signals.get("lexical_support.tokens", 0.0)
    low_support = support is not None and tokens >= model.min_lexical_tokens and support < model.low_lexical_support
    return {"evidence_logit": _logit(signals.get("verification.p_yes")),
            "claim_logit": _logit(signals.get("claim.p_yes")),
            "conflict_name": signals.get("constraints.conflict_name", 0.0),
            "low_lexical_support": float(low_support),
            "shape_mismatch": signals.get("units.shape_mismatch", 0.0),
            "cross_language": float(cross_language), "retried": float(retried), "quoted": float(quoted)}


def score(x: Mapping[str, float], model: AcceptanceModel) -> float:
    z = model.intercept + sum(w * x.get(name, 0.0) for name, w in model.weights.items())
    return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))


def against(signals: Mapping[str, float]) -> list[str]:
    """The constraint kinds the cited evidence speaks against (refused whatever the score)."""
    return [kind for kind in sorted(AGAINST) if signals.get(f"constraints.conflict_{kind}")]


def decide(run: CheckRun, first: Draft, model: AcceptanceModel, cross_language: bool) -> Acceptance:
    """Keep or refuse the draft that ``run`` checked (every check having run); ``first``: the draft as the model
    wrote it."""
    signals = run.signals
    final = run.draft or first
    x = features(signals, model, first.retried, final.described_as != first.described_as, cross_language)
    s = score(x, model)
    vetoed = next((v for name, v in run.verdicts if not v.passed and name in model.vetoes), None)
    if vetoed is not None:
        return Acceptance(False, s, x, vetoed.reason, overruled=True)
    if against(signals):
        constraints = next(v for name, v in run.verdicts if name == "constraints")
        return Acceptance(False, s, x, constraints.reason, overruled=True)
    if s >= model.threshold:
        return Acceptance(True, s, x)
    verdicts = [f"{what} {p:.2f}" for what, p in (("evidence", signals.get("verification.p_yes")),
                                                  ("answer", signals.get("claim.p_yes"))) if p is not None]
    why = ("asked whether the cited sentences answer the question and whether the answer is right by them, the model "
           f"doubts it (p(yes): {', '.join(verdicts)})" if verdicts else "its checks' signals are weak")
    refusals = [v.reason for _, v in run.verdicts if not v.passed]
    if refusals:
        why = refusals[0].split("; draft answer:")[0].removeprefix(f"{final.described_as} does not answer this "
                                                                     "question: ")
    return Acceptance(False, s, x, f"{final.described_as} does not answer this question: {why} (acceptance "
                                   f"{s:.2f} < {model.threshold:g}); draft answer: {final.text}")
