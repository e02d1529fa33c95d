"""Query latency of the hybrid retriever on an existing knowledge base, with and without the reranker.

Reports wall-clock and process CPU time per query. On a shared, overloaded machine wall time measures the queue,
not the code: with one torch thread, CPU time is what the same query costs on an idle core.

    DOCQA_EMBEDDER__NUM_THREADS=1 .venv/bin/python -m bench.retrieval_latency \
        --kb bench/results/kb-drcd/kb --questions ../shared/eval/drcd_dev/qa.jsonl --n 20 --rerank-n 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

from app.config import load_settings
from app.wiring import build_retriever
from bench.eval_data import load_questions

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.retrieval_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kb", type=Path, required=True)
    p.add_argument("--questions", type=Path, required=True)
    p.add_argument("--n", type=int, default=20, help="questions timed without the reranker")
    p.add_argument("--rerank-n", type=int, default=5, help="questions timed with the reranker")
    p.add_argument("--name", default="latency")
    args = p.parse_args(argv)

    settings = load_settings(kb_dir=args.kb)
    settings.retrieval.rerank = True
    retriever = build_retriever(settings)
    questions = load_questions(args.questions, sample=max(args.n, args.rerank_n), seed=1)
    retriever.retrieve(questions[0].question, rerank=False)  # warm-up: first call pays for lazy loading
    report: dict[str, dict[str, float]] = {}
    for mode, n in (("fusion", args.n), ("fusion + rerank", args.rerank_n)):
        wall, cpu = [], []
        stages: dict[str, list[float]] = defaultdict(list)
        for q in questions[:n]:
            w, c = time.perf_counter(), time.process_time()
            result = retriever.retrieve(q.question, rerank=mode != "fusion")
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
            for stage, seconds in result.timings.items():
                stages[stage].append(seconds)
        report[mode] = {"n": n, "median_wall_ms": 1000 * statistics.median(wall),
                        "median_cpu_ms": 1000 * statistics.median(cpu),
                        **{f"median_{s}_wall_ms": 1000 * statistics.median(v) for s, v in stages.items()}}
    out = {"kb": str(args.kb), "chunks": retriever.kb.manifest.n_chunks, "load_average": os.getloadavg(),
           "cpu_count": os.cpu_count(), "torch_threads": settings.embedder.num_threads,
           "rerank_candidates": settings.retrieval.rerank_candidates, "reranker": settings.retrieval.reranker,
           "date": time.strftime("%Y-%m-%d %H:%M"), "modes": report}
    print(json.dumps(out, indent=2))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"retrieval_{args.name}.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
