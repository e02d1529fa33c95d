"""Calibrate the grounding check: which support score tells answers to answerable questions from invented ones.

Re-scores the raw answers of saved answer-bench runs (bench/results/answer_*.json, docqa rows) without calling
the LLM again: each question's passages are retrieved and packed exactly as the pipeline does, then every answer
the model did not refuse is scored with the lexical support (prompts/lexical_support.py, token-weighted share of
content tokens found in the cited passages) and, for comparison, the e5 embedding support of its sentences (the
lowest and the mean). Prints both per answer and, for a range of lexical thresholds, how many answers to
answerable questions would be refused (false refusals) and how many to unanswerable ones (refusals gained).

    DOCQA_HOME=bench/results/home .venv/bin/python -m bench.calibrate_support \\
        bench/results/answer_seeds_docqa_prompt_v2.json bench/results/answer_seeds_docqa_lexical*.json

Writes bench/results/support_calibration.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from app.answer.answer_pipeline import is_refusal
from app.config import Settings, load_settings
from app.wiring import assemble_pipeline, build_generator
from bench.lib.bench_kb import build_kb
from bench.lib.eval_data import load_questions
from bench.lib.paths import RESULTS_DIR, SEEDS_DIR, SEEDS_QUESTIONS
from prompts.citations import remove_invalid_citations
from prompts.grounding_check import EmbeddingSupportScorer, check_answer
from prompts.language import detect_language
from prompts.lexical_support import answer_lexical_support

THRESHOLDS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)


def score_runs(settings: Settings, run_paths: list[Path], questions_path: Path, corpus: Path) -> list[dict]:
    questions = {q.qid: q for q in load_questions(questions_path)}
    retriever, embedder, _ = build_kb(settings, corpus, "answer-seeds")
    generator = build_generator(settings)  # its tokenizer sizes the packing
    pipeline = assemble_pipeline(retriever, generator, embedder, settings)
    e5 = EmbeddingSupportScorer(embedder)
    a = settings.answer
    refusals = (a.refusal_zh, a.refusal_en)
    rows = []
    for path in run_paths:
        run = json.loads(path.read_text(encoding="utf-8"))
        settings.generation.max_new_tokens = run["generation"]["max_new_tokens"]  # same packing budget
        for r in run["rows"]["docqa"]:
            raw = r.get("raw", "").strip()
            if r.get("gated") or not raw or is_refusal(raw, refusals):
                continue
            q = questions[r["qid"]]
            language = detect_language(q.question, a.zh_min_cjk_share)
            packed = pipeline._pack(q.question, retriever.retrieve(q.question).passages, language,
                                    settings.generation)
            text = remove_invalid_citations(raw, {p.number for p in packed})
            lexical = answer_lexical_support(text, packed, a.zh_min_cjk_share, skip=refusals)
            e5_scores = [c.support_score for c in check_answer(text, packed, e5, a.min_support_score, refusals)]
            rows.append({"run": path.name, "qid": q.qid, "answerable": q.answerable, "answer": text,
                         "lexical": lexical.score, "covered": lexical.covered, "total": lexical.total,
                         "skipped_sentences": lexical.skipped_sentences,
                         "e5_min": min(e5_scores, default=None),
                         "e5_mean": sum(e5_scores) / len(e5_scores) if e5_scores else None})
    return rows


def sweep(rows: list[dict], min_tokens: int) -> list[dict]:
    """Per threshold: answers to answerable / unanswerable questions the lexical check would refuse (answers with
    fewer than ``min_tokens`` content tokens are not judged, as in the pipeline)."""
    out = []
    for t in THRESHOLDS:
        vetoed = [r for r in rows if r["lexical"] is not None and r["lexical"] < t and r["total"] >= min_tokens]
        out.append({"threshold": t,
                    "answerable_refused": sum(r["answerable"] for r in vetoed),
                    "answerable_total": sum(r["answerable"] for r in rows),
                    "unanswerable_refused": sum(not r["answerable"] for r in vetoed),
                    "unanswerable_total": sum(not r["answerable"] for r in rows)})
    return out


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.calibrate_support", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="saved bench/results/answer_*.json runs with docqa rows")
    p.add_argument("--questions", type=Path, default=SEEDS_QUESTIONS)
    p.add_argument("--corpus", type=Path, default=SEEDS_DIR)
    args = p.parse_args(argv)
    settings = load_settings()
    rows = score_runs(settings, args.runs, args.questions, args.corpus)

    print("\n| run | question | answerable | lexical support | covered/total | e5 min | e5 mean |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (not r["answerable"], r["qid"], r["run"])):
        print(f"| {r['run']} | {r['qid']} | {'yes' if r['answerable'] else 'no'} | {fmt(r['lexical'])} | "
              f"{r['covered']}/{r['total']} | {fmt(r['e5_min'])} | {fmt(r['e5_mean'])} |")
    table = sweep(rows, settings.answer.min_lexical_tokens)
    print(f"\n(answers with >= {settings.answer.min_lexical_tokens} content tokens judged)")
    print("\n| lexical threshold | answers to answerable refused | answers to unanswerable refused |")
    print("|---|---|---|")
    for s in table:
        print(f"| {s['threshold']} | {s['answerable_refused']}/{s['answerable_total']} | "
              f"{s['unanswerable_refused']}/{s['unanswerable_total']} |")
    out = RESULTS_DIR / "support_calibration.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv),
                               "runs": [str(r) for r in args.runs], "rows": rows, "sweep": table},
                              ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
