"""Near-miss benchmark: docqa's full pipeline (real embedder, retrieval, gates, local LLM) on near-miss questions
(right output: a refusal) and noisy answerable ones (right output: an answer holding an expected string).

Each question gets its own small knowledge base (bench/lib/near_miss_sets.py). To embed each passage once, one base per
dataset holds every document the sampled questions need, and a question's retrieval keeps only its own documents
(dense scores are the same cosines a one-question base gives; BM25 statistics are the dataset's).

The model generates once per question, with the new checks off and the retry on (today's pipeline: "before").
The same generated text then goes through ``_finish`` under the variants compared ("after": constraint checks,
with and without the LLM verification, with and without the retry), so variants differ only in the checks.

    python -m bench.near_miss_bench --near-miss 30 --noisy 10 --half report
    python -m bench.near_miss_bench --near-miss 30 --noisy 10 --refinish bench/results/near_miss_both.json
        # the same run's answers finished again by today's checks (give the run's own sample sizes)

    python -m bench.near_miss_bench --near-miss 10 --noisy 4 --half report --end-to-end
        # the shipped pipeline itself, reading in one pass and with the first pass (seconds = whole answer)

Writes bench/results/near_miss_<half>.json (--end-to-end: near_miss_e2e_<half>.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from app.answer.answer_pipeline import (
    PassagesEvent,
    RetryEvent,
    TokenEvent,
    _passage_language,
)
from app.config import Settings, load_settings
from app.wiring import assemble_pipeline, build_generator
from bench.lib.answer_scoring import keyword_hit
from bench.lib.bench_kb import build_kb
from bench.lib.near_miss_sets import (
    EVAL_DIR,
    EVAL_FOLDERS,
    Case,
    load_docs,
    near_miss_cases,
    noisy_cases,
)
from bench.lib.paths import RESULTS_DIR
from prompts.evidence_match import cited_evidence
from prompts.evidence_verification import verify_evidence
from prompts.records import Answer
from prompts.settings import AnswerSettings

# Variants of the finishing checks: name -> AnswerSettings changes.
# The LLM verification is applied offline: its p(yes) is stored per answer, so any threshold can be scored.
NO_VERIFICATION = {"min_verification_yes_zh": 0.0, "min_verification_yes_en": 0.0}
VARIANTS = {
    "before (today)": {"evidence_checks": (), **NO_VERIFICATION},
    "constraints": NO_VERIFICATION,
}


def doc_id_of(passage, corpus) -> str:
    return corpus.doc_id_of_file.get(Path(passage.chunk.source).name, passage.chunk.source)


class CaseRetriever:
    """A dataset base's retriever narrowed to one case's documents."""

    def __init__(self, retriever, corpus) -> None:
        self.retriever, self.corpus, self.allowed = retriever, corpus, set()

    def retrieve(self, query: str, top_k: int | None = None, rerank: bool | None = None):
        top_k = top_k or self.retriever.settings.top_k
        result = self.retriever.retrieve(query, top_k=100, rerank=rerank)
        kept = [p for p in result.passages if doc_id_of(p, self.corpus) in self.allowed][:top_k]
        return replace(result, passages=kept)


def dataset_bases(settings: Settings, cases: list[Case]) -> dict[str, CaseRetriever]:
    bases = {}
    for dataset in sorted({c.dataset for c in cases}):
        needed = {d for c in cases if c.dataset == dataset for d in c.doc_ids}
        docs = load_docs(EVAL_DIR / EVAL_FOLDERS[dataset])
        path = RESULTS_DIR / f"near_miss_{dataset}_corpus.jsonl"
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"doc_id": d, "title": docs[d].title, "text": docs[d].text},
                                           ensure_ascii=False) + "\n" for d in sorted(needed)), encoding="utf-8")
        s = settings.model_copy(deep=True)
        s.retrieval.dense_k = s.retrieval.bm25_k = 100_000  # rank the whole base; the case filter follows
        retriever, _, corpus = build_kb(s, path, f"near-miss-{dataset}")
        bases[dataset] = CaseRetriever(retriever, corpus)
        print(f"base {dataset}: {len(needed)} documents", file=sys.stderr)
    return bases


# The shipped pipeline end to end, with and without the first pass over the best passages (issue #19): the first
# pass changes what the model reads, hence what it answers, which finishing one stored answer cannot show.
END_TO_END = {"one pass": {"first_pass_budget_tokens": 0},
              "first pass, usual thresholds": {"first_pass_budget_tokens": 320, "first_pass_min_verification_yes": 0.0},
              "first pass, p(yes) >= 0.9": {"first_pass_budget_tokens": 320, "first_pass_min_verification_yes": 0.9}}


def run_end_to_end(settings: Settings, retriever: CaseRetriever, generator, embedder, case: Case,
                   variants: list[str] | None = None) -> dict:
    retriever.allowed = set(case.doc_ids)
    q = case.question
    row = {"qid": q.qid, "kind": case.kind, "dataset": case.dataset, "half": case.half, "noise": case.noise,
           "answers": q.answers, "variants": {}}
    for name, changes in END_TO_END.items():
        if variants and name not in variants:
            continue
        s = settings.model_copy(update={"answer": settings.answer.replace(**changes)})
        getattr(generator, "forget_context", lambda: None)()  # neither variant reuses the other's passages
        start = time.perf_counter()
        answer = assemble_pipeline(retriever, generator, embedder, s).answer(q.question)
        row["variants"][name] = {"refused": answer.refused, "text": answer.text, "reason": answer.refusal_reason,
                                 "added_s": time.perf_counter() - start}
    return row


def run_case(settings: Settings, retriever: CaseRetriever, generator, embedder, case: Case) -> dict:
    retriever.allowed = set(case.doc_ids)
    before = assemble_pipeline(retriever, generator, embedder, settings.model_copy(
        update={"answer": settings.answer.replace(**VARIANTS["before (today)"], retry_refusals=True)}))
    q = case.question
    first, second, retried, passages, done = [], [], False, [], None
    start = time.perf_counter()
    for event in before.stream(q.question):
        if isinstance(event, PassagesEvent):
            passages = event.passages
        elif isinstance(event, RetryEvent):
            retried = True
        elif isinstance(event, TokenEvent):
            (second if retried else first).append(event.text)
        else:
            done = event.answer
    seconds = time.perf_counter() - start
    row = {"qid": q.qid, "kind": case.kind, "dataset": case.dataset, "half": case.half, "noise": case.noise,
           "answers": q.answers, "first": "".join(first).strip(), "second": "".join(second).strip(),
           "retried": retried, "seconds": seconds, "gate_reason": "", "variants": {}}
    language = done.language
    row["language"] = language
    if "generate" not in done.timings:  # refused before generation (evidence gate, name check)
        row["gate_reason"] = done.refusal_reason
        for name in VARIANTS:
            for retry in (True, False):
                row["variants"][f"{name}, retry {'on' if retry else 'off'}"] = {
                    "refused": True, "text": done.text, "reason": done.refusal_reason, "added_s": 0.0}
        return row
    finish_variants(settings, retriever, generator, embedder, case, row, passages)
    return row


def finish_variants(settings: Settings, retriever: CaseRetriever, generator, embedder, case: Case, row: dict,
                    passages, known_p_yes: dict[str, float] | None = None) -> None:
    """Finish the row's stored generation under each variant, and add the LLM's p(yes) for each answer the
    constraint checks let through (taken from ``known_p_yes`` for a text already scored)."""
    q, language, retried = case.question, row["language"], row["retried"]
    for name, changes in VARIANTS.items():
        for retry in (True, False):
            s = settings.model_copy(update={"answer": settings.answer.replace(**changes, retry_refusals=retry)})
            pipeline = assemble_pipeline(retriever, generator, embedder, s)
            packed = pipeline._pack(q.question, passages, language, s.generation)
            raw = row["second"] if (retried and retry) else row["first"]
            refused = Answer(question=q.question, text=pipeline._refusal(language), refused=True,
                             passages=passages, language=language, timings={})
            t = time.perf_counter()
            answer = pipeline._finish(raw, packed, refused, retried=retried and retry)
            row["variants"][f"{name}, retry {'on' if retry else 'off'}"] = {
                "refused": answer.refused, "text": answer.text, "reason": answer.refusal_reason,
                "added_s": time.perf_counter() - t if name != "before (today)" else 0.0}
    # The LLM's verdict on each answer the constraint checks let through (applied offline, see summarise).
    packed = assemble_pipeline(retriever, generator, embedder, settings)._pack(q.question, passages, language,
                                                                              settings.generation)
    scores: dict[str, float] = dict(known_p_yes or {})
    for name, v in row["variants"].items():
        if name.startswith("constraints") and not v["refused"] and hasattr(generator, "yes_probability"):
            if v["text"] not in scores:
                t = time.perf_counter()
                evidence = cited_evidence(v["text"], packed, settings.answer.evidence_neighbours)
                scores[v["text"]] = verify_evidence(generator, q.question, evidence, language)
                v["verify_s"] = time.perf_counter() - t
            v["p_yes"] = scores[v["text"]]
    row["passage_language"] = _passage_language(packed, settings.answer)


def refinish(path: Path, settings: Settings, bases: dict[str, CaseRetriever], pool: list[Case]) -> list[dict]:
    """A saved run's generations finished again by today's checks. ``bases`` must be built from the same sample
    as the run (the same --near-miss/--noisy), so retrieval returns the same passages; each answer text's p(yes)
    is reused when the text is unchanged, so only new texts are sent to the LLM."""
    saved = json.loads(path.read_text(encoding="utf-8"))["rows"]
    by_qid = {c.question.qid: c for c in pool}
    cases = [by_qid[r["qid"]] for r in saved]
    generator = build_generator(settings)
    for row, case in zip(saved, cases):
        if row["gate_reason"]:
            continue
        retriever = bases[case.dataset]
        retriever.allowed = set(case.doc_ids)
        known = {v["text"]: v["p_yes"] for v in row["variants"].values() if "p_yes" in v}
        row["variants"] = {}
        finish_variants(settings, retriever, generator, retriever.retriever.embedder, case, row,
                        list(retriever.retrieve(case.question.question).passages), known)
    return saved


def with_verification(rows: list[dict], threshold: float | None, defaults: AnswerSettings) -> list[dict]:
    """Rows with '<constraints variant> + LLM verify @t' added: refused when the constraints refused or p(yes) < t
    (t None: the configured threshold for the question's and its passages' languages,
    ``defaults.verification_threshold``, as the pipeline applies it)."""
    label = (f"defaults (zh {defaults.min_verification_yes_zh:g}, en {defaults.min_verification_yes_en:g}, "
             f"cross {defaults.min_verification_yes_cross:g})" if threshold is None else f"@{threshold:g}")
    out = []
    for r in rows:
        variants = dict(r["variants"])
        t = (defaults.verification_threshold(r.get("language", "zh"), r.get("passage_language"))
             if threshold is None else threshold)
        for name, v in r["variants"].items():
            if name.startswith("constraints"):
                refused = v["refused"] or v.get("p_yes", 1.0) < t
                variants[name.replace("constraints", f"constraints + LLM verify {label}")] = {
                    **v, "refused": refused, "added_s": v["added_s"] + v.get("verify_s", 0.0)}
        out.append({**r, "variants": variants})
    return out


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    variants = rows[0]["variants"].keys() if rows else []
    groups = {"near miss zh": lambda r: r["kind"] == "near_miss" and r["dataset"] != "squad",
              "near miss en": lambda r: r["kind"] == "near_miss" and r["dataset"] == "squad"}
    for noise in sorted({r["noise"] for r in rows if r["kind"] == "noisy"}):
        groups[f"noisy @{noise:.2f}"] = lambda r, n=noise: r["kind"] == "noisy" and r["noise"] == n
    for v in variants:
        out[v] = {}
        for g, pred in groups.items():
            sel = [r for r in rows if pred(r)]
            if not sel:
                continue
            if g.startswith("near miss"):
                out[v][g] = {"refusal": sum(r["variants"][v]["refused"] for r in sel) / len(sel), "n": len(sel)}
            else:
                out[v][g] = {"accuracy": sum(not r["variants"][v]["refused"] and
                                             keyword_hit(r["variants"][v]["text"], r["answers"]) for r in sel) / len(sel),
                             "false_refusal": sum(r["variants"][v]["refused"] for r in sel) / len(sel), "n": len(sel)}
        added = [r["variants"][v]["added_s"] for r in rows]
        out[v]["mean_added_s"] = sum(added) / max(1, len(added))
    return out


THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def report(rows: list[dict]) -> None:
    """Every variant on each half, the verification at several thresholds (choose on 'tune', read 'report')."""
    defaults = load_settings().answer
    for half in ("tune", "report"):
        sel = [r for r in rows if r["half"] == half]
        if not sel:
            continue
        summary = {}
        for t in (None, *THRESHOLDS):
            summary.update(summarise(with_verification(sel, t, defaults)))
        print(f"\n### {half} half: {len(sel)} questions\n")
        groups = sorted({g for v in summary.values() for g in v if g != "mean_added_s"})
        print("| variant | " + " | ".join(groups) + " | added s/question |")
        print("|---" * (len(groups) + 2) + "|")
        for name, v in summary.items():
            cells = []
            for g in groups:
                c = v.get(g)
                cells.append("-" if c is None else f"refused {c['refusal']:.2f} (n={c['n']})" if "refusal" in c
                             else f"acc {c['accuracy']:.2f}, false ref. {c['false_refusal']:.2f} (n={c['n']})")
            print(f"| {name} | " + " | ".join(cells) + f" | {v['mean_added_s']:.2f} |")


def report_end_to_end(rows: list[dict]) -> None:
    for half in ("tune", "report"):
        summary = summarise([r for r in rows if r["half"] == half])
        for name, groups in summary.items():
            cells = [f"{g}: " + (f"refused {c['refusal']:.2f}" if "refusal" in c else
                                 f"acc {c['accuracy']:.2f}, false ref. {c['false_refusal']:.2f}") + f" (n={c['n']})"
                     for g, c in groups.items() if g != "mean_added_s"]
            print(f"{half} | {name} | " + " | ".join(cells) + f" | {groups['mean_added_s']:.1f} s/question")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.near_miss_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--near-miss", type=int, default=30, help="near-miss questions per dataset (drcd, cmrc, squad)")
    p.add_argument("--noisy", type=int, default=10, help="noisy answerable questions per dataset and noise level")
    p.add_argument("--half", choices=["tune", "report", "both"], default="both")
    p.add_argument("--datasets", nargs="+", default=["drcd", "cmrc", "squad"], choices=["drcd", "cmrc", "squad"])
    p.add_argument("--bases-only", action="store_true", help="build (embed) the bases and stop")
    p.add_argument("--report", type=Path, help="only print the tables of a saved run")
    p.add_argument("--refinish", type=Path, help="finish a saved run's generations again with today's checks")
    p.add_argument("--end-to-end", action="store_true",
                   help="the shipped pipeline, one pass vs first pass (no offline variants)")
    p.add_argument("--only", nargs="+", choices=list(END_TO_END), help="--end-to-end: these variants only")
    args = p.parse_args(argv)
    if args.report:
        report(json.loads(args.report.read_text(encoding="utf-8"))["rows"])
        return 0
    settings = load_settings()
    pool = near_miss_cases(10_000) + noisy_cases(10_000, 1) + noisy_cases(10_000, 4)
    both: list[Case] = []
    for kind, dataset, noise, n in ([("near_miss", d, 0.0, args.near_miss) for d in ("drcd", "cmrc", "squad")] +
                                    [("noisy", d, z, args.noisy) for d in ("drcd", "squad") for z in (0.5, 0.8)]):
        if dataset not in args.datasets:
            continue
        for half in ("tune", "report"):
            both += [c for c in pool if c.kind == kind and c.dataset == dataset and c.half == half
                     and abs(c.noise - noise) < 1e-9][:n]
    # One base per dataset for both halves: switching halves re-embeds nothing.
    bases = dataset_bases(settings, both)
    if args.bases_only:
        return 0
    if args.refinish:
        rows = refinish(args.refinish, settings, bases, both)
        out = args.refinish.with_name(args.refinish.stem + "_refinished.json")
        out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "refinished": str(args.refinish),
                                   "rows": rows}, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        report(rows)
        print(f"written {out}")
        return 0
    cases = [c for c in both if args.half in ("both", c.half)]
    generator = build_generator(settings)
    embedder = next(iter(bases.values())).retriever.embedder
    out = RESULTS_DIR / f"near_miss_{'e2e_' if args.end_to_end else ''}{args.half}{'_only' if args.only else ''}.json"
    run = (lambda *a: run_end_to_end(*a, variants=args.only)) if args.end_to_end else run_case
    # Interleave halves too, so a run stopped early has both.
    rows = []
    # Interleave datasets so a stopped run still covers every group.
    order = sorted(cases, key=lambda c: [x.question.qid for x in cases if x.dataset == c.dataset and x.half == c.half
                                         and x.kind == c.kind and x.noise == c.noise].index(c.question.qid))
    for i, case in enumerate(order):
        rows.append(run(settings, bases[case.dataset], generator, embedder, case))
        r = rows[-1]
        p_yes = r["variants"].get("constraints, retry on", {}).get("p_yes")
        print(f"{i + 1}/{len(order)} {case.kind} {case.dataset} {r.get('first', '')[:50]!r} -> "
              f"{ {k: v['refused'] for k, v in r['variants'].items()} } p_yes={p_yes}", file=sys.stderr)
        out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "load": os.getloadavg(),
                                   "answer_settings": vars(settings.answer), "rows": rows},
                                  ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    if args.end_to_end:
        report_end_to_end(rows)
    else:
        report(rows)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
