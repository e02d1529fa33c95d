"""LLM-free measurement of the evidence check (prompts/evidence_match.py) on many questions.

For each near-miss question the sentence a model is most likely to cite is the one of its base sharing most of
the question's words (the hardest case for the check); for each noisy answerable question it is the gold
paragraph's sentence holding the answer. The check should fail the first and pass the second. Reported per
constraint kind alone and combined, with the coverage threshold swept on the tuning half and the chosen one
applied to the report half.

    python -m bench.evidence_check_bench --per-dataset 300
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.lib.near_miss_sets import (
    EVAL_DIR,
    EVAL_FOLDERS,
    Case,
    load_docs,
    near_miss_cases,
    noisy_cases,
)
from bench.lib.paths import RESULTS_DIR
from prompts.evidence_match import coverage_tokens, match_constraints
from prompts.language import detect_language
from prompts.question_constraints import question_constraints
from prompts.sentences import split_sentences
from prompts.settings import AnswerSettings

KINDS = ("year", "date", "relative_time", "unit", "relation", "figure", "role", "variant", "name", "proper_noun")
DEFAULT_KINDS = tuple(k for k in AnswerSettings().evidence_checks if k != "coverage")


def evidence_for(case: Case, docs, neighbours: int) -> str:
    """The window a model's answer would be checked against (see module doc) and its whole paragraph, each with
    the document title, and the anchor sentence alone."""
    q = case.question
    q_tokens = coverage_tokens(q.question)
    best = (-1, "", [], 0)
    for doc_id in case.doc_ids:
        doc = docs[doc_id]
        sentences = split_sentences(doc.text)
        for i, s in enumerate(sentences):
            if case.kind == "noisy":
                score = 1 if (doc_id == q.gold_doc_ids[0] and any(a and a in s for a in q.answers)) else -1
            else:
                score = len(q_tokens & coverage_tokens(s))
            if score > best[0]:
                best = (score, doc.title.replace("_", " "), sentences, i)
    _, title, sentences, i = best
    return (title + "\n" + "".join(sentences[max(0, i - neighbours):i + neighbours + 1]),
            title + "\n" + "".join(sentences), sentences[i] if sentences else "")


def verify(rows: list[dict], per_group: int) -> None:
    """p(yes) of the LLM verification for ``per_group`` rows of each (kind, language, half), interleaved so a
    stopped run is balanced; saved after every score."""
    import time

    from app.config import load_settings
    from app.wiring import build_generator
    from prompts.evidence_verification import verify_evidence

    generator = build_generator(load_settings())
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["lang"], r["half"]), []).append(r)
    out = RESULTS_DIR / "evidence_verify.json"
    done = []
    for i in range(per_group):
        for key, members in sorted(groups.items()):
            if i < len(members):
                r = members[i]
                t = time.perf_counter()
                r["p_yes"] = verify_evidence(generator, r["question"], r["evidence"], r["lang"])
                r["verify_s"] = time.perf_counter() - t
                done.append(r)
                print(f"{len(done)} {key} p_yes={r['p_yes']:.3f} {r['verify_s']:.1f}s", file=sys.stderr)
                out.write_text(json.dumps(done, ensure_ascii=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.evidence_check_bench", description=__doc__)
    p.add_argument("--per-dataset", type=int, default=300)
    p.add_argument("--neighbours", type=int, default=1)
    p.add_argument("--max-false-refusal", type=float, default=0.05)
    p.add_argument("--verify", type=int, default=0,
                   help="also score N cases per group and half with the local LLM's yes/no verification")
    args = p.parse_args(argv)
    docs = {}
    for folder in EVAL_FOLDERS.values():
        docs.update(load_docs(EVAL_DIR / folder))
    cases = near_miss_cases(args.per_dataset) + noisy_cases(args.per_dataset // 2, 1) + \
        noisy_cases(args.per_dataset // 2, 4)
    rows = []
    for c in cases:
        lang = detect_language(c.question.question, 0.2)
        cons = question_constraints(c.question.question, lang)
        ev, paragraph, anchor = evidence_for(c, docs, args.neighbours)
        failed = {k: not match_constraints(cons, ev, frozenset([k]), 0, 1, paragraph, [anchor]).matches
                  for k in KINDS}
        cov = match_constraints(cons, ev, frozenset(), 0, 1).coverage
        rows.append({"qid": c.question.qid, "kind": c.kind, "dataset": c.dataset, "lang": lang, "half": c.half,
                     "noise": c.noise, "failed": failed, "coverage": cov})
        rows[-1]["evidence"] = ev
        rows[-1]["question"] = c.question.question
    RESULTS_DIR.mkdir(exist_ok=True)
    if args.verify:
        verify(rows, args.verify)
    (RESULTS_DIR / "evidence_check.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")

    def rate(sel, pred):
        return (sum(map(pred, sel)) / len(sel), len(sel)) if sel else (float("nan"), 0)

    groups = {"near miss zh": lambda r: r["kind"] == "near_miss" and r["lang"] == "zh",
              "near miss en": lambda r: r["kind"] == "near_miss" and r["lang"] == "en",
              "noisy zh": lambda r: r["kind"] == "noisy" and r["lang"] == "zh",
              "noisy en": lambda r: r["kind"] == "noisy" and r["lang"] == "en"}
    print(f"{len(rows)} cases; neighbours={args.neighbours}\n")
    print("Share of cases each check refuses (near miss: want high; noisy answerable: want low), both halves:\n")
    print("| check | " + " | ".join(groups) + " |")
    print("|---" * (len(groups) + 1) + "|")
    for k in KINDS:
        cells = [rate([r for r in rows if g(r)], lambda r, k=k: r["failed"][k]) for g in groups.values()]
        print(f"| {k} | " + " | ".join(f"{v:.3f} (n={n})" for v, n in cells) + " |")
    def refuses(r):  # the default kinds (AnswerSettings.evidence_checks), without coverage
        return any(r["failed"][k] for k in DEFAULT_KINDS)

    chosen = {}
    for lang in ("zh", "en"):
        tune = [r for r in rows if r["lang"] == lang and r["half"] == "tune"]
        best = (0.0, -1.0)
        for t in [x / 100 for x in range(0, 101, 2)]:
            fr = rate([r for r in tune if r["kind"] == "noisy"],
                      lambda r: refuses(r) or (r["coverage"] is not None and r["coverage"] < t))[0]
            nm = rate([r for r in tune if r["kind"] == "near_miss"],
                      lambda r: refuses(r) or (r["coverage"] is not None and r["coverage"] < t))[0]
            if fr <= args.max_false_refusal and nm >= best[1]:
                best = (t, nm)
        chosen[lang] = best[0]
    print(f"\nCoverage threshold chosen on the tuning half (false refusal <= {args.max_false_refusal}): {chosen}\n")
    print(f"default kinds: {DEFAULT_KINDS}\n")
    print("| all checks + coverage | half | " + " | ".join(groups) + " |")
    print("|---|---" + "|---" * len(groups) + "|")
    for half in ("tune", "report"):
        for label, use_cov in (("constraints only", False), ("constraints + coverage", True)):
            cells = []
            for g in groups.values():
                sel = [r for r in rows if g(r) and r["half"] == half]
                cells.append(rate(sel, lambda r: refuses(r) or (
                    use_cov and r["coverage"] is not None and r["coverage"] < chosen[r["lang"]])))
            print(f"| {label} | {half} | " + " | ".join(f"{v:.3f} (n={n})" for v, n in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
