"""ANN index benchmark: recall@10 against exact search, p50/p95 latency, build time and memory per index type.

Data: real e5 passage embeddings of the shared eval corpora + seeds (bench/real_embeddings.py), grown to N with
vectors sampled around them (bench/sampled_vectors.py explains the sampling and why it is conservative).
Queries: real e5 embeddings of the eval questions, and the same questions perturbed by the calibrated noise.
Each index type is built with ingest/store/ann_index.py (the code the knowledge base uses).

Run: ``OMP_WAIT_POLICY=PASSIVE nice -n 10 .venv/bin/python -m bench.ann_bench --sizes 100000 1000000``
(PASSIVE: on a CPU shared with other jobs, OpenMP's default spin-waiting made FAISS training ~3x slower.)
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from app.config import IndexSettings
from bench.lib.real_embeddings import RESULTS_DIR, load_real_corpus
from bench.lib.sampled_vectors import corpus_of_size
from ingest.store.ann_index import apply_search_params, build_index

K = 10


def index_mb(index: faiss.Index) -> float:
    """Size of the index as written to disk (what the knowledge base stores; about what it takes in memory)."""
    with tempfile.NamedTemporaryFile(suffix=".faiss") as tmp:
        faiss.write_index(index, tmp.name)
        return os.path.getsize(tmp.name) / 2**20


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)]))


def latencies_ms(index: faiss.Index, queries: np.ndarray) -> tuple[float, float, float]:
    """p50/p95 wall time and p50 CPU time of one-query-at-a-time searches (how the app searches).

    On a CPU shared with other jobs wall time mostly measures waiting; CPU time (all threads of this process)
    is what a search costs, i.e. about its wall time on an idle machine (one query runs on one thread).
    """
    wall, cpu = [], []
    for q in queries:
        c0, t0 = time.process_time(), time.perf_counter()
        index.search(q[None, :], K)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return float(np.percentile(wall, 50)), float(np.percentile(wall, 95)), float(np.percentile(cpu, 50))


def variants(args: argparse.Namespace) -> list[tuple[str, IndexSettings, str, list[int]]]:
    """(label, build settings, search-knob name, knob values) for each configured index type."""
    out = []
    for kind in args.types:
        if kind == "flat":
            out.append(("flat", IndexSettings(index_type="flat"), "", [0]))
        elif kind == "hnsw":
            out.append((f"hnsw{args.hnsw_m}", IndexSettings(index_type="hnsw", hnsw_m=args.hnsw_m),
                        "efSearch", args.ef_search))
        else:
            for factor in args.nlist_factors:
                settings = IndexSettings(index_type=kind, ivf_nlist_factor=factor, ivfpq_m=args.pq_m)
                out.append((f"{kind}(nlist={factor:g}√N)", settings, "nprobe", args.nprobe))
    return out


def run_size(n: int, args: argparse.Namespace) -> list[dict]:
    real = load_real_corpus(cached_only=args.cached_only)
    base, sampler = corpus_of_size(real.passage_vectors, n, seed=0)
    rng = np.random.default_rng(1)
    picked = real.question_vectors[rng.choice(len(real.question_vectors), args.queries, replace=False)]
    query_sets = {"real": picked, "noisy": sampler.perturb(picked)}
    ids = np.arange(n, dtype=np.int64)

    exact = faiss.IndexFlatIP(base.shape[1])
    exact.add(base)
    truth = {name: exact.search(q, K)[1] for name, q in query_sets.items()}
    del exact
    gc.collect()
    print(f"N={n}: sampling sigma={sampler.sigma:.3f} (target real-NN cosine {sampler.target_cosine:.3f})", flush=True)

    rows = []
    for label, settings, knob, values in variants(args):
        if label.startswith("hnsw") and n > args.hnsw_max_n:
            print(f"  skip {label} at N={n} (> --hnsw-max-n {args.hnsw_max_n})", flush=True)
            continue
        gc.collect()
        t0 = time.perf_counter()
        index = build_index(base, ids, settings)
        build_s = time.perf_counter() - t0
        mem_mb = index_mb(index)
        for value in values:
            if knob == "nprobe":
                apply_search_params(index, dataclasses.replace(settings, ivf_nprobe=value))
            elif knob == "efSearch":
                apply_search_params(index, dataclasses.replace(settings, hnsw_ef_search=value))
            recalls = {name: recall_at_k(index.search(q, K)[1], truth[name]) for name, q in query_sets.items()}
            p50, p95, cpu50 = latencies_ms(index, query_sets["real"][: args.latency_queries])
            row = {"n": n, "index": label, "knob": knob, "value": value, "build_s": round(build_s, 1),
                   "memory_mb": round(mem_mb), "recall10_real": round(recalls["real"], 4),
                   "recall10_noisy": round(recalls["noisy"], 4), "p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
                   "cpu_p50_ms": round(cpu50, 3)}
            rows.append(row)
            print(f"  {label:22s} {knob or '-':>8s}={value:<4d} recall@10 real {recalls['real']:.3f} "
                  f"noisy {recalls['noisy']:.3f}  p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  cpu p50 {cpu50:7.2f} ms  "
                  f"build {build_s:6.1f} s  mem {mem_mb:6.0f} MB", flush=True)
        del index
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--types", nargs="+", default=["flat", "hnsw", "ivf", "ivfpq"])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--nlist-factors", type=float, nargs="+", default=[1.0, 2.0],
                        help="nlist = factor * sqrt(N); 4 trains for many minutes at 1M on 2 cores")
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--pq-m", type=int, default=48)
    parser.add_argument("--hnsw-max-n", type=int, default=100_000,
                        help="skip HNSW above this N (its build took 102 s at 100k on 2 busy cores)")
    parser.add_argument("--queries", type=int, default=1000, help="queries for recall")
    parser.add_argument("--latency-queries", type=int, default=200, help="single-query searches timed")
    parser.add_argument("--cached-only", action="store_true", help="use only already-cached real embeddings")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": platform.machine(), "cpus": os.cpu_count(),
            "faiss": faiss.__version__, "faiss_threads": faiss.omp_get_max_threads(),
            "load_avg_start": os.getloadavg(), "args": vars(args)}
    rows = []
    for n in args.sizes:
        rows.extend(run_size(n, args))
    meta["load_avg_end"] = os.getloadavg()
    out = args.out or RESULTS_DIR / f"ann_bench_{'_'.join(str(n) for n in args.sizes)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
