"""Fit the acceptance decision (prompts/acceptance.py) on the tuning half of keep_right_bench runs, choose its
threshold there for a stated share of right drafts refused, and show its curve on the report half.

Each drafted answer of a run (a case where the model answered; refusals before or by the model are not drafts)
is one example: label 1 when the draft holds the expected answer of an answerable case, 0 when it does not or the
case has no answer (a near miss). Features: prompts/acceptance.FEATURES, from the signals the run stored.

    python -m bench.keep_right_bench --name kr_acceptance --answer decision=acceptance   # records the features
    python -m bench.fit_acceptance bench/results/keep_right_kr_acceptance.json [--max-false-refusal 0.05]

Prints the fitted model as the AnswerSettings.acceptance snippet, and for the report half the curve (threshold →
right drafts kept, wrong drafts refused) and each group's accuracy / refusals with the decision.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from prompts.acceptance import FEATURES, score
from prompts.settings import AcceptanceModel

_PREFIX = "acceptance."


def features_of(row: dict) -> dict[str, float] | None:
    """The decision's features of a row's checked draft (runs with decision=acceptance record them), or None
    when the run did not record them (no draft, or another decision)."""
    s = row.get("signals") or {}
    if not row.get("checked") or _PREFIX + "score" not in s:
        return None
    return {name: s.get(_PREFIX + name, 0.0) for name in FEATURES}


def decided_by_score(row: dict) -> bool:
    """A draft the score decides: neither evidence against it nor a veto refused it."""
    return features_of(row) is not None and not row["signals"].get(_PREFIX + "overruled")


def label(row: dict) -> int:
    return int(bool(row["answerable"] and row["checked_right"]))


def examples(rows: list[dict], half: str) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The drafts the score decides on ``half``: label 1 when the checked draft holds the expected answer of an
    answerable case, 0 when it does not or the case has no answer (a near miss)."""
    kept = [r for r in rows if r["half"] == half and decided_by_score(r)]
    xs = [[features_of(r)[n] for n in FEATURES] for r in kept]
    return np.array(xs, dtype=float), np.array([label(r) for r in kept]), kept


def fit(rows: list[dict], max_false_refusal: float, c: float) -> AcceptanceModel:
    from sklearn.linear_model import LogisticRegression

    base = AcceptanceModel()
    x, y, _ = examples(rows, "tune")
    clf = LogisticRegression(C=c, max_iter=1000).fit(x, y)
    model = base.model_copy(update={"intercept": float(clf.intercept_[0]),
                                    "weights": {n: round(float(w), 4) for n, w in zip(FEATURES, clf.coef_[0])}})
    _, _, tune = examples(rows, "tune")
    scores = sorted(score(features_of(r), model) for r in tune if label(r))
    # The highest threshold that refuses at most max_false_refusal of the right drafts.
    allowed = int(max_false_refusal * len(scores))
    threshold = scores[allowed] if scores else 0.5
    return model.model_copy(update={"threshold": round(max(0.0, threshold - 1e-4), 4)})


def curve(rows: list[dict], half: str, model: AcceptanceModel) -> list[tuple[float, float, float]]:
    """(threshold, share of right drafts kept, share of wrong drafts refused) on ``half``."""
    scored = [(score(features_of(r), model) if decided_by_score(r) else -1.0, bool(label(r)))
              for r in rows if r["half"] == half and features_of(r) is not None]
    out = []
    for t in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, model.threshold):
        right = [s for s, ok in scored if ok]
        wrong = [s for s, ok in scored if not ok]
        out.append((t, sum(s >= t for s in right) / max(1, len(right)), sum(s < t for s in wrong) / max(1, len(wrong))))
    return out


def decided(row: dict, model: AcceptanceModel) -> tuple[bool, bool]:
    """(refused, right) of ``row`` with the decision in place of the checks after generation (a derivation's
    corrected figure counts as the answer)."""
    if not decided_by_score(row):
        return row["refused"], row["right"]
    if score(features_of(row), model) < model.threshold:
        return True, False
    return False, bool(label(row))


def group_table(rows: list[dict], half: str, model: AcceptanceModel) -> None:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["half"] == half:
            kind = "answerable" if r["answerable"] else "near miss"
            groups.setdefault(f"{r['set']} {r['language']} {kind}", []).append(r)
            groups.setdefault(f"all {r['language']} {kind}", []).append(r)
    print("| group | n | as run: accuracy / refused / wrong shown | with this model: accuracy / refused / wrong shown |")
    print("|---|---:|---|---|")
    for g, sel in sorted(groups.items()):
        n = len(sel)
        b_ref, b_right = sum(r["refused"] for r in sel), sum(r["right"] for r in sel)
        d = [decided(r, model) for r in sel]
        d_ref, d_right = sum(x[0] for x in d), sum(x[1] for x in d)
        print(f"| {g} | {n} | {b_right / n:.2f} / {b_ref / n:.2f} / {n - b_ref - b_right} | "
              f"{d_right / n:.2f} / {d_ref / n:.2f} / {n - d_ref - d_right} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fit_acceptance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="keep_right_bench results with signals")
    p.add_argument("--max-false-refusal", type=float, default=0.05,
                   help="share of the tuning half's right drafts the threshold may refuse")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 regularisation strength")
    args = p.parse_args(argv)
    rows = [r for path in args.runs for r in json.loads(path.read_text(encoding="utf-8"))["rows"]]
    model = fit(rows, args.max_false_refusal, args.c)
    x, y, _ = examples(rows, "tune")
    print(f"fitted on the tuning half: {len(y)} drafts ({int(y.sum())} right)")
    print("acceptance =", json.dumps(model.model_dump(), indent=1))
    for half in ("tune", "report"):
        print(f"\n### {half} half: threshold → right drafts kept, wrong drafts refused\n")
        for t, kept, refused in curve(rows, half, model):
            print(f"  {t:.4f}: kept {kept:.2f}, refused {refused:.2f}")
        print()
        group_table(rows, half, model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
