"""Calibrate the evidence gate: the retrieval score below which docqa refuses without calling the LLM.

Answerable questions should pass the gate, unanswerable ones should not. Unanswerable questions come from the
seeds question set (written to be unanswerable, several near misses) and, optionally, from CMRC 2018 questions
whose gold passage is removed from the results (the rest of the corpus stays: the near-miss case). For each
score field (dense cosine, rerank, fused, bm25) the threshold chosen is the highest one that keeps false refusals
of answerable questions at or below --max-false-refusal; its refusal rate on unanswerable questions is reported.

    .venv/bin/python -m bench.calibrate_gate --cmrc-sample 150

Writes bench/results/gate_calibration.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings, load_settings
from bench.lib.bench_kb import build_kb
from bench.lib.eval_data import (
    Corpus,
    Question,
    load_questions,
)
from bench.lib.paths import CMRC_DIR, RESULTS_DIR, SEEDS_DIR, SEEDS_QUESTIONS
from prompts.evidence_gate import EVIDENCE_FIELDS, best_evidence

# Extra passages retrieved for gold-removed questions, so top_k non-gold passages remain after the removal.
GOLD_REMOVAL_MARGIN = 10


@dataclass
class Observation:
    dataset: str
    qid: str
    answerable: bool
    scores: dict[str, float | None]


def doc_id_of(passage, corpus: Corpus) -> str:
    return corpus.doc_id_of_file.get(Path(passage.chunk.source).name, passage.chunk.source)


def retrieve_without_gold(retriever, question: Question, corpus: Corpus, top_k: int, rerank: bool) -> list:
    """The top_k passages once the question's gold documents are taken out: an unanswerable question whose
    near misses (the rest of the corpus) are still there."""
    result = retriever.retrieve(question.question, top_k=top_k + GOLD_REMOVAL_MARGIN, rerank=rerank)
    gold = set(question.gold_doc_ids)
    return [p for p in result.passages if doc_id_of(p, corpus) not in gold][:top_k]


def observe(dataset: str, qid: str, answerable: bool, passages: list) -> Observation:
    return Observation(dataset, qid, answerable, {f: best_evidence(passages, f) for f in EVIDENCE_FIELDS})


def collect(settings: Settings, cmrc_sample: int, rerank: bool) -> list[Observation]:
    top_k = settings.retrieval.top_k
    observations = []
    retriever, _, _ = build_kb(settings, SEEDS_DIR, "answer-seeds")
    for i, q in enumerate(load_questions(SEEDS_QUESTIONS)):
        passages = retriever.retrieve(q.question, rerank=rerank).passages
        observations.append(observe("seeds", q.qid, q.answerable, passages))
        if (i + 1) % 10 == 0:
            print(f"  seeds {i + 1} questions", file=sys.stderr)
    print(f"seeds: {len(observations)} questions", file=sys.stderr)
    if cmrc_sample:
        retriever, _, corpus = build_kb(settings, CMRC_DIR / "corpus.jsonl", "answer-cmrc")
        for i, q in enumerate(load_questions(CMRC_DIR / "qa.jsonl", sample=cmrc_sample, seed=0)):
            passages = retriever.retrieve(q.question, rerank=rerank).passages
            observations.append(observe("cmrc", q.qid, True, passages))
            observations.append(observe("cmrc-gold-removed", q.qid, False,
                                        retrieve_without_gold(retriever, q, corpus, top_k, rerank)))
            if (i + 1) % 10 == 0:
                print(f"  cmrc {i + 1}/{cmrc_sample}", file=sys.stderr)
    return observations


def rates(observations: list[Observation], field: str, threshold: float) -> dict[str, float]:
    """Refusal rate on unanswerable and false-refusal rate on answerable questions at ``threshold``."""
    def refused(o: Observation) -> bool:
        score = o.scores[field]
        return score is None or score < threshold

    unanswerable = [o for o in observations if not o.answerable]
    answerable = [o for o in observations if o.answerable]
    return {"refusal_unanswerable": sum(map(refused, unanswerable)) / max(1, len(unanswerable)),
            "false_refusal": sum(map(refused, answerable)) / max(1, len(answerable)),
            "n_unanswerable": len(unanswerable), "n_answerable": len(answerable)}


def calibrate(observations: list[Observation], field: str, max_false_refusal: float) -> dict:
    """The highest threshold (among observed scores) whose false-refusal rate stays within the limit."""
    candidates = sorted({o.scores[field] for o in observations if o.scores[field] is not None})
    best = {"threshold": float("-inf"), **rates(observations, field, float("-inf"))}
    for threshold in candidates:
        r = rates(observations, field, threshold)
        if r["false_refusal"] <= max_false_refusal:
            best = {"threshold": threshold, **r}
    per_dataset = {d: rates([o for o in observations if o.dataset.split("-")[0] == d], field, best["threshold"])
                   for d in sorted({o.dataset.split("-")[0] for o in observations})}
    return {**best, "per_dataset": per_dataset}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.calibrate_gate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cmrc-sample", type=int, default=0, help="CMRC 2018 questions to add (each twice: with and "
                   "without its gold passage); 0 = seeds only")
    p.add_argument("--max-false-refusal", type=float, default=0.05)
    p.add_argument("--rerank", action="store_true", help="run the reranker too (slow on CPU: it embeds every "
                   "candidate's tokens); without it the rerank field is empty and dense/fused/bm25 are calibrated")
    args = p.parse_args(argv)
    settings = load_settings()
    started = time.perf_counter()
    observations = collect(settings, args.cmrc_sample, args.rerank)
    # A field no retrieval stage filled (rerank without --rerank) has nothing to calibrate.
    results = {field: calibrate(observations, field, args.max_false_refusal) for field in EVIDENCE_FIELDS
               if any(o.scores[field] is not None for o in observations)}
    print(f"\nGate calibration ({len(observations)} observations, false refusals <= {args.max_false_refusal:.0%})\n")
    print("| score | threshold | refusal (unanswerable) | false refusal | per dataset (refusal / false refusal) |")
    print("|---|---|---|---|---|")
    for field, r in results.items():
        per = "; ".join(f"{d} {v['refusal_unanswerable']:.2f} / {v['false_refusal']:.2f}"
                        for d, v in r["per_dataset"].items())
        print(f"| {field} | {r['threshold']:.4f} | {r['refusal_unanswerable']:.3f} | {r['false_refusal']:.3f} | {per} |")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / "gate_calibration.json"
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv), "seconds": time.perf_counter() - started,
        "retrieval_settings": vars(settings.retrieval), "rerank": args.rerank, "results": results,
        "observations": [vars(o) for o in observations]}, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
