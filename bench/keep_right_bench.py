"""Keep the right answers (issue #25): docqa's whole pipeline (real embedder, retrieval, gates, the packaged LLM,
every check) over the development sets of bench/lib/keep_right_sets.py, every draft, verdict and signal stored.

Each case is a question over its own five passages: one knowledge base holds every case's passages and a case's
retrieval keeps only its own (bench/near_miss_bench.py's CaseRetriever). Everything the LLM says is kept in
bench/results/keep_right_llm.sqlite3 (bench/lib/llm_cache.py), keyed by the exact prompt: a run after a change to
the checks generates only what it has not generated before, so before/after differ only in the checks (and in what
the new checks ask the model).

    python -m bench.keep_right_bench --name before --half both        # run (or re-run from the store)
    python -m bench.keep_right_bench --report bench/results/keep_right_before.json

Writes bench/results/keep_right_<name>.json (one row per case: the draft(s), the final answer, the refusal
reason, and the signals of the last draft: p(yes) of its evidence, each constraint kind's verdict, lexical
support, retrieval scores, answer shape) and prints accuracy / refusal tables per set, language and half.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from app.answer.answer_pipeline import AnswerPipeline, PassagesEvent, RetryEvent, TokenEvent
from app.config import Settings, load_settings
from app.wiring import assemble_pipeline, build_generator
from bench.lib.answer_f1 import f1
from bench.lib.answer_overrides import with_answer_settings
from bench.lib.bench_kb import build_kb
from bench.lib.keep_right_sets import DevCase, all_cases
from bench.lib.llm_cache import CachedGenerator
from bench.lib.paths import RESULTS_DIR
from bench.near_miss_bench import CaseRetriever, doc_id_of

LLM_STORE = RESULTS_DIR / "keep_right_llm.sqlite3"


def corpus_of(cases: list[DevCase], path: Path) -> Path:
    """The JSONL corpus holding every case's passages (ids are unique per case)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    docs = {p.doc_id: p for c in cases for p in c.passages}
    path.write_text("".join(json.dumps({"doc_id": d.doc_id, "title": d.title, "text": d.text}, ensure_ascii=False)
                            + "\n" for d in docs.values()), encoding="utf-8")
    return path


def build_case_retriever(settings: Settings, cases: list[DevCase]) -> CaseRetriever:
    s = settings.model_copy(deep=True)
    s.retrieval.dense_k = s.retrieval.bm25_k = 100_000  # rank the whole base; the case filter follows
    retriever, _, corpus = build_kb(s, corpus_of(cases, RESULTS_DIR / "keep_right_corpus.jsonl"), "keep-right")
    return CaseRetriever(retriever, corpus)


def run_case(pipeline: AnswerPipeline, retriever: CaseRetriever, case: DevCase) -> dict:
    retriever.allowed = {p.doc_id for p in case.passages}
    drafts, current, passages, answer = [], [], [], None
    start = time.perf_counter()
    for event in pipeline.stream(case.question):
        if isinstance(event, PassagesEvent):
            passages = event.passages
        elif isinstance(event, TokenEvent):
            current.append(event.text)
        elif isinstance(event, RetryEvent):
            drafts.append("".join(current).strip())
            current = []
        else:
            answer = event.answer
    seconds = time.perf_counter() - start
    assert answer is not None
    generated = "generate" in answer.timings
    if generated:
        drafts.append("".join(current).strip())
    right_docs = {p.doc_id for p in case.passages if case.answerable and case.is_right(p.text)}
    corpus = retriever.corpus
    row = {
        "case_id": case.case_id, "set": case.set_name, "source": case.source, "answerable": case.answerable,
        "language": case.language, "half": case.half, "shape": case.shape, "question": case.question,
        "answers": case.answers, "answer_match": case.answer_match,
        "refused": answer.refused, "text": answer.text, "reason": answer.refusal_reason,
        "right": (not answer.refused) and case.is_right(answer.text),
        "drafts": drafts, "generated": generated, "seconds": seconds,
        "timings": {k: round(v, 3) for k, v in answer.timings.items()},
        "passages": [{"doc": doc_id_of(p, corpus), "dense": p.dense_score, "bm25": p.bm25_score,
                      "fused": p.fused_score, "holds_answer": doc_id_of(p, corpus) in right_docs}
                     for p in passages],
    }
    # The checked draft (shown or withdrawn) and what every check measured: what bench/fit_acceptance.py fits on.
    checked = answer.withdrawn if answer.refused else answer.text
    row.update(checked=checked, checked_right=bool(checked) and case.is_right(checked), signals=answer.signals)
    return row


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per group: answerable → accuracy, refused, wrong shown; unanswerable → refused, wrong shown."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        kind = "answerable" if r["answerable"] else "near miss"
        for g in (f"{r['set']} {r['language']} {kind}", f"all {r['language']} {kind}"):
            groups.setdefault(g, []).append(r)
    out = {}
    for g, sel in sorted(groups.items()):
        n = len(sel)
        refused = sum(r["refused"] for r in sel)
        if "near miss" in g:
            out[g] = {"n": n, "refused": refused / n, "wrong_shown": n - refused}
        else:
            right = sum(r["right"] for r in sel)
            out[g] = {"n": n, "accuracy": right / n, "refused": refused / n, "wrong_shown": n - refused - right,
                      "f1": sum(row_f1(r) for r in sel) / n}
    return out


def row_f1(row: dict) -> float:
    """The answer's F1 against the expected spans (0 for a refusal): the answer's shape, beside the keyword
    accuracy that any answer holding the span passes."""
    return 0.0 if row["refused"] else f1(row["text"], row["answers"], row["language"])


def report(rows: list[dict]) -> None:
    for half in ("tune", "report"):
        sel = [r for r in rows if r["half"] == half]
        if not sel:
            continue
        print(f"\n### {half} half ({len(sel)} cases)\n")
        print("| group | n | accuracy | refused | wrong answers shown | F1 |")
        print("|---|---:|---:|---:|---:|---:|")
        for g, s in summarise(sel).items():
            acc, f = (f"{s['accuracy']:.3f}", f"{s['f1']:.2f}") if "accuracy" in s else ("", "")
            print(f"| {g} | {s['n']} | {acc} | {s['refused']:.3f} | {s['wrong_shown']} | {f} |")


def _interleave(groups: list[list[DevCase]]) -> list[DevCase]:
    ordered, i = [], 0
    while any(i < len(g) for g in groups):
        ordered += [g[i] for g in groups if i < len(g)]
        i += 1
    return ordered


def _cells(rows: list[dict]) -> dict[str, str]:
    return {g: (f"{s['accuracy']:.2f} / {s['refused']:.2f} / {s['wrong_shown']} / F1 {s['f1']:.2f}" if "accuracy" in s
                else f"refused {s['refused']:.2f} / {s['wrong_shown']}") for g, s in summarise(rows).items()}


def after_last_token(row: dict) -> float | None:
    """Seconds a row's answer spent after its draft's last token: the checks, the decision, a repair."""
    t = row.get("timings", {})
    if "generate" not in t:
        return None
    return sum(v for k, v in t.items() if k.startswith("check_") or k in ("acceptance", "repair"))


def compare(runs: dict[str, list[dict]]) -> None:
    """Saved runs side by side on the cases all of them hold, per half, with the median seconds after the last
    token."""
    common = set.intersection(*({r["case_id"] for r in rows} for rows in runs.values()))
    for half in ("tune", "report"):
        columns = {name: [r for r in rows if r["case_id"] in common and r["half"] == half]
                   for name, rows in runs.items()}
        if not any(columns.values()):
            continue
        cells = {name: _cells(rows) for name, rows in columns.items()}
        n = {g: s["n"] for g, s in summarise(next(iter(columns.values()))).items()}
        print(f"\n### {half} half (answerable: accuracy / refused / wrong shown / F1; near miss: refused / wrong "
              "shown)\n")
        print("| group | n | " + " | ".join(runs) + " |")
        print("|---|---:|" + "---|" * len(runs))
        for g in n:
            print(f"| {g} | {n[g]} | " + " | ".join(c.get(g, "") for c in cells.values()) + " |")
        seconds = []
        for rows in columns.values():
            after = sorted(x for x in map(after_last_token, rows) if x is not None)
            seconds.append(f"{after[len(after) // 2]:.2f} / {after[-1]:.1f}" if after else "")
        print("| seconds after the last token, median / max | | " + " | ".join(seconds) + " |")


def order_cases(cases: list[DevCase], per_group: int | None = None) -> list[DevCase]:
    """The cases interleaved over the groups (set, language, answerable, half; within a group over its sources),
    so a run stopped early covers every group; at most ``per_group`` of each group."""
    groups: dict[tuple, dict[str, list[DevCase]]] = {}
    for c in cases:
        groups.setdefault((c.set_name, c.language, c.answerable, c.half), {}).setdefault(c.source, []).append(c)
    return _interleave([_interleave(list(by_source.values()))[:per_group] for by_source in groups.values()])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.keep_right_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="run")
    p.add_argument("--half", choices=["tune", "report", "both"], default="both")
    p.add_argument("--sets", nargs="+", default=["distractors", "near_miss", "written_zh"])
    p.add_argument("--per-group", type=int,
                   help="at most this many cases of each group (set, language, answerable, half)")
    p.add_argument("--same-cases", type=Path, help="only the cases of this saved run (e.g. to finish its drafts again)")
    p.add_argument("--answer", nargs="+", default=[], metavar="KEY=VALUE",
                   help="[answer] settings for this run (VALUE as JSON when it is JSON), e.g. decision=acceptance")
    p.add_argument("--report", type=Path, nargs="+", help="only print the tables of saved runs (rows added up)")
    p.add_argument("--compare", type=Path, nargs="+", metavar="RUN",
                   help="only print saved runs side by side on the cases all of them hold")
    args = p.parse_args(argv)
    if args.compare:
        compare({path.stem.removeprefix("keep_right_"): json.loads(path.read_text(encoding="utf-8"))["rows"]
                 for path in args.compare})
        return 0
    if args.report:
        report([r for path in args.report for r in json.loads(path.read_text(encoding="utf-8"))["rows"]])
        return 0
    settings = with_answer_settings(load_settings(), args.answer)
    everything = all_cases()
    retriever = build_case_retriever(settings, everything)
    cases = order_cases([c for c in everything if c.set_name in args.sets and args.half in ("both", c.half)],
                        args.per_group)
    if args.same_cases:
        done = {r["case_id"] for r in json.loads(args.same_cases.read_text(encoding="utf-8"))["rows"]}
        cases = [c for c in cases if c.case_id in done]
    generator = CachedGenerator(build_generator(settings), LLM_STORE)
    embedder = retriever.retriever.embedder
    pipeline = assemble_pipeline(retriever, generator, embedder, settings)
    pipeline.warm_up()
    out = RESULTS_DIR / f"keep_right_{args.name}.json"
    rows: list[dict] = []
    for i, case in enumerate(cases):
        rows.append(run_case(pipeline, retriever, case))
        r = rows[-1]
        print(f"{i + 1}/{len(cases)} {case.case_id} {'R' if r['right'] else 'r' if r['refused'] else 'W'} "
              f"{r['text'][:60]!r} ({r['seconds']:.1f} s, llm store {generator.hits} hits / {generator.misses} new)",
              file=sys.stderr)
        out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "load": os.getloadavg(),
                                   "command": " ".join(sys.argv), "answer_settings": vars(settings.answer),
                                   "generation": vars(settings.generation), "rows": rows},
                                  ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    report(rows)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
