"""Where the benchmarks read their data and write their results."""

from __future__ import annotations

import os
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]
RESULTS_DIR = BENCH_DIR / "results"
QUESTIONS_DIR = BENCH_DIR / "questions"
# ../shared beside the repository: the published eval sets and the seed documents (DOCQA_SHARED_DIR when the
# checkout is elsewhere, e.g. a git worktree).
SHARED_DIR = Path(os.environ.get("DOCQA_SHARED_DIR") or BENCH_DIR.parents[1] / "shared")
EVAL_DIR = SHARED_DIR / "eval"
SEEDS_DIR = SHARED_DIR / "seeds"
SEEDS_QUESTIONS = QUESTIONS_DIR / "seeds_qa.jsonl"
CMRC_DIR = EVAL_DIR / "cmrc2018_trial"
