"""How the Milvus store grows on Milvus Lite: rows written through docqa's own writer (one generation per step, as
incremental ingests add them), then dense and keyword search through the store's snapshot at each size.

Vectors are sampled around real e5 passage vectors (``bench/lib/sampled_vectors.py``) taken from an embedding cache
a benchmark base already holds; each row's text is a short unique phrase (so Milvus's BM25 has a term to find
without the jieba cost of real passages, which the quality benchmark measures). Query vectors are held-out real-ish
samples; the latency figures are p50/p95 over ``--queries`` searches with the generation filter docqa always sends.

    python -m bench.milvus_scale_bench --cache bench/results/milvus-cmrc/embedded/kb/embedding_cache.sqlite3 \
        --steps 100000 300000 1000000

Writes bench/results/milvus_scale.json; prints one row per size with the process's resident memory (Milvus Lite
runs inside this process for a local file).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from app.config import Settings
from bench.lib.paths import RESULTS_DIR
from bench.lib.sampled_vectors import AroundRealSampler
from ingest.records import ChunkDraft
from ingest.store.kb_lock import WriterLock
from ingest.store.milvus.milvus_store import MilvusStore

DOC_ROWS = 1000  # rows per synthetic "document" (one content hash)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.milvus_scale_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, required=True, help="an embedding_cache.sqlite3 of real passage vectors")
    p.add_argument("--steps", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--queries", type=int, default=20, help="searches per size (Milvus Lite scans every row in Python per search)")
    p.add_argument("--dense-index", default="FLAT", choices=["FLAT", "HNSW", "IVF_FLAT"])
    p.add_argument("--work-dir", type=Path, default=RESULTS_DIR / "milvus-scale")
    return p.parse_args(argv)


def _real_vectors(cache: Path) -> np.ndarray:
    conn = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        blobs = [row[0] for row in conn.execute("SELECT vector FROM vectors")]
    finally:
        conn.close()
    return np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in seconds)
    return {"p50": statistics.median(ms), "p95": ms[min(len(ms) - 1, int(0.95 * len(ms)))]}


def run(args: argparse.Namespace) -> dict:
    real = _real_vectors(args.cache)
    sampler = AroundRealSampler(real, seed=0)
    queries = sampler.perturb(real[np.random.default_rng(1).integers(0, len(real), args.queries)])
    shutil.rmtree(args.work_dir, ignore_errors=True)
    settings = Settings(data_dir=args.work_dir)
    settings.store = settings.store.replace(backend="milvus", dense_index=args.dense_index, insert_batch=2000)
    store = MilvusStore.for_base(settings.store, settings.kb_path, "scale", settings.index)
    dimension = real.shape[1]
    rows, results = 0, []
    for target in args.steps:
        started = time.perf_counter()
        with WriterLock(settings.kb_path):
            store.prepare_write()
            writer = store.start_writer("scale-bench", dimension)
            while rows < target:
                n = min(DOC_ROWS, target - rows)
                drafts = [ChunkDraft(text=f"段落{rows + i}号", page=None, heading_path=[], char_start=0,
                                     char_end=0, ordinal=i) for i in range(n)]
                writer.add_chunks(f"doc{rows:09d}", drafts, sampler.sample(n))
                rows += n
            writer.commit()
        write_seconds = time.perf_counter() - started
        snapshot = store.open("scale-bench", dimension)
        snapshot.dense_search(queries[0], 30)  # loading the new segments is not timed
        dense = []
        for q in queries:
            t = time.perf_counter()
            snapshot.dense_search(q, 30)
            dense.append(time.perf_counter() - t)
        keyword = []
        for i in range(args.queries):
            t = time.perf_counter()
            hits = snapshot.keyword_search(f"段落{(i * 7919) % rows}号", 30)
            keyword.append(time.perf_counter() - t)
        assert hits, "keyword search found nothing"
        results.append({"rows": rows, "write_seconds": write_seconds, "dense_ms": _percentiles(dense),
                        "keyword_ms": _percentiles(keyword), "max_rss_gb": _rss_gb()})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return {"dense_index": args.dense_index, "dimension": dimension, "real_vectors": len(real),
            "date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv), "steps": results}


def main(argv: list[str] | None = None) -> int:
    result = run(_parse_args(argv))
    print(f"\n## Milvus Lite, {result['dense_index']} dense index, {result['dimension']}-dim\n")
    print("| rows | write s (this step) | dense p50 / p95 ms | keyword p50 / p95 ms | max RSS GB |")
    print("|---|---|---|---|---|")
    for s in result["steps"]:
        print(f"| {s['rows']:,} | {s['write_seconds']:.0f} | {s['dense_ms']['p50']:.1f} / {s['dense_ms']['p95']:.1f} "
              f"| {s['keyword_ms']['p50']:.1f} / {s['keyword_ms']['p95']:.1f} | {s['max_rss_gb']:.2f} |")
    out = RESULTS_DIR / f"milvus_scale_{result['dense_index'].lower()}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
