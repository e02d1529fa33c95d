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

from app.answer.answer_pipeline import AnswerPipeline, PassagesEvent, RetryEvent, TokenEvent, _passage_language
from app.config import Settings, load_settings
from app.wiring import assemble_pipeline, build_generator
from bench.lib.bench_kb import build_kb
from bench.lib.decision_pipeline import SAME_LANGUAGE_ONLY, DecisionPipeline
from bench.lib.keep_right_sets import DevCase, all_cases
from bench.lib.llm_cache import CachedGenerator
from bench.lib.paths import RESULTS_DIR
from bench.near_miss_bench import CaseRetriever, doc_id_of
from prompts.answer_decision import decide
from prompts.citations import remove_invalid_citations

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


def draft_signals(pipeline: AnswerPipeline, question: str, draft: str, passages, language: str,
                  retried: bool) -> dict:
    """The decision on ``draft`` as the checks see it (prompts/answer_decision.py: the unit, the derivation, the
    signals, the acceptance score with the configured model, the finding), for fitting and reporting."""
    a = pipeline.settings.answer
    packed = pipeline._pack(question, passages, language, pipeline.settings.generation)
    text = remove_invalid_citations(draft, {p.number for p in packed})
    checks = frozenset(a.evidence_checks)
    if _passage_language(packed, a) != language:
        checks -= SAME_LANGUAGE_ONLY
    decision = decide(question, text, packed, language, a, pipeline.generator, checks, retried)
    return {"text": decision.text, **decision.signals.as_dict(), "score": decision.score,
            "accepted": decision.accepted, "finding": decision.finding.kind if decision.finding else "",
            "derived": decision.derived, "packed": len(packed)}


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
    chain = None
    if getattr(pipeline, "shadow", False):
        # The chain of vetoes on the same draft (a refusal before any draft: the same refusal).
        chain = pipeline.last_shadow or answer
        pipeline.last_shadow = None
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
    if chain is not None:
        row["shipped"] = {"refused": chain.refused, "text": chain.text, "reason": chain.refusal_reason,
                          "right": (not chain.refused) and case.is_right(chain.text)}
    last = drafts[-1] if drafts else ""
    if generated and last and not answer.refusal_reason.startswith("the model found no answer"):
        signals = draft_signals(pipeline, answer.standalone_question or case.question, last, passages,
                                answer.language, retried=len(drafts) > 1)
        signals["right"] = case.is_right(signals["text"])
        row["signals"] = signals
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
            out[g] = {"n": n, "accuracy": right / n, "refused": refused / n, "wrong_shown": n - refused - right}
    return out


def as_shipped(rows: list[dict]) -> list[dict]:
    """The rows as the chain of vetoes (today's parsers) finished the same drafts (runs with --decision)."""
    return [{**{k: v for k, v in r.items() if k != "shipped"}, **r["shipped"]} for r in rows if "shipped" in r]


def report(rows: list[dict]) -> None:
    if rows and all("shipped" in r for r in rows):
        print("\n## the chain of vetoes (with today's question and number parsers), same drafts")
        report(as_shipped(rows))
        print("\n## the decision")
    for half in ("tune", "report"):
        sel = [r for r in rows if r["half"] == half]
        if not sel:
            continue
        print(f"\n### {half} half ({len(sel)} cases)\n")
        print("| group | n | accuracy | refused | wrong answers shown |")
        print("|---|---:|---:|---:|---:|")
        for g, s in summarise(sel).items():
            acc = f"{s['accuracy']:.3f}" if "accuracy" in s else ""
            print(f"| {g} | {s['n']} | {acc} | {s['refused']:.3f} | {s['wrong_shown']} |")


def _interleave(groups: list[list[DevCase]]) -> list[DevCase]:
    ordered, i = [], 0
    while any(i < len(g) for g in groups):
        ordered += [g[i] for g in groups if i < len(g)]
        i += 1
    return ordered


def _cells(rows: list[dict]) -> dict[str, str]:
    return {g: (f"{s['accuracy']:.2f} / {s['refused']:.2f} / {s['wrong_shown']}" if "accuracy" in s
                else f"refused {s['refused']:.2f} / {s['wrong_shown']}") for g, s in summarise(rows).items()}


def compare(before: list[dict], after: list[dict]) -> None:
    """Side by side on the cases both runs hold: the shipped pipeline before, the chain of vetoes with today's
    parsers on the same drafts (when the after run shadowed it), and the decision."""
    common = {r["case_id"] for r in before} & {r["case_id"] for r in after}
    for half in ("tune", "report"):
        b = [r for r in before if r["case_id"] in common and r["half"] == half]
        a = [r for r in after if r["case_id"] in common and r["half"] == half]
        if not a:
            continue
        columns = {"before": _cells(b)}
        if all("shipped" in r for r in a):
            columns["chain, today's parsers"] = _cells(as_shipped(a))
        columns["after: decision + repair"] = _cells(a)
        n = {g: s["n"] for g, s in summarise(a).items()}
        print(f"\n### {half} half (answerable: accuracy / refused / wrong shown; near miss: refused / wrong shown)\n")
        print("| group | n | " + " | ".join(columns) + " |")
        print("|---|---:|" + "---|" * len(columns))
        for g in n:
            print(f"| {g} | {n[g]} | " + " | ".join(c.get(g, "") for c in columns.values()) + " |")


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
    p.add_argument("--decision", action="store_true",
                   help="finish drafts with the one acceptance decision and a repair (bench/lib/decision_pipeline.py)")
    p.add_argument("--report", type=Path, nargs="+", help="only print the tables of saved runs (rows added up)")
    p.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"),
                   help="only print two saved runs side by side on the cases both hold")
    args = p.parse_args(argv)
    if args.compare:
        before, after = (json.loads(p.read_text(encoding="utf-8"))["rows"] for p in args.compare)
        compare(before, after)
        return 0
    if args.report:
        report([r for path in args.report for r in json.loads(path.read_text(encoding="utf-8"))["rows"]])
        return 0
    settings = load_settings()
    everything = all_cases()
    retriever = build_case_retriever(settings, everything)
    cases = order_cases([c for c in everything if c.set_name in args.sets and args.half in ("both", c.half)],
                        args.per_group)
    if args.same_cases:
        done = {r["case_id"] for r in json.loads(args.same_cases.read_text(encoding="utf-8"))["rows"]}
        cases = [c for c in cases if c.case_id in done]
    generator = CachedGenerator(build_generator(settings), LLM_STORE)
    embedder = retriever.retriever.embedder
    pipeline = (DecisionPipeline.assemble(retriever, generator, embedder, settings, shadow=True) if args.decision
                else assemble_pipeline(retriever, generator, embedder, settings))
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
