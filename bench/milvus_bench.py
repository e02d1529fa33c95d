"""FAISS folder store vs Milvus Lite on one corpus and question set: retrieval quality (hit@1/hit@5/MRR of the full
hybrid retriever, and of its dense and BM25 lists), query latency p50/p95, and ingest throughput into each store.

Same embedder, chunking, fusion and neighbour merge on both sides: only the store differs (its dense search and its
BM25: bm25s over rjieba words + CJK bigrams in the folder, Milvus's BM25 function over its jieba analyzer). The
corpus is embedded once (into the folder base's embedding cache); each store is then built fresh from that cache,
so the ingest figures are the cost of loading, chunking and writing a store, not of embedding. Nothing is tuned:
both stores run the shipped defaults. Questions are split by position into halves A (even) and B (odd); the report
half is B, and A is shown beside it.

    DOCQA_SHARED_DIR=/work/shared python -m bench.milvus_bench --set cmrc --sample 300
    DOCQA_SHARED_DIR=/work/shared python -m bench.milvus_bench --set drcd --sample 200 --corpus-docs 400

Writes bench/results/milvus_<set>.json and prints a table (bench/RESULTS_MILVUS.md has the figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from app.config import Settings, load_settings
from app.wiring import build_retriever, load_embedder, run_ingest
from bench.lib.eval_data import Question, corpus_subset, load_questions, materialise_corpus
from bench.lib.paths import EVAL_DIR, RESULTS_DIR
from bench.lib.retrieval_metrics import KS, MethodScores
from ingest.pipeline.ingest_pipeline import IngestOptions
from ingest.pipeline.progress import TerminalProgress
from ingest.store.kb_layout import EMBEDDING_CACHE_FILE, TOKEN_VECTORS_FILE
from retrieval.hybrid_retriever import HybridRetriever

SETS = {"cmrc": EVAL_DIR / "cmrc2018_trial", "drcd": EVAL_DIR / "drcd_dev"}
STORES = ("folder", "milvus")
HALVES = {"A": 0, "B": 1}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.milvus_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", choices=sorted(SETS), required=True)
    p.add_argument("--sample", type=int, help="N questions drawn at random (seed --seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus-docs", type=int, help="keep the questions' gold docs plus random others, N in all")
    return p.parse_args(argv)


def _store_settings(base: Settings, folder: Path, backend: str) -> Settings:
    settings = base.model_copy(deep=True)
    settings.model_cache_dir = base.models_path  # the converted embedder is shared, not converted again
    settings.data_dir = folder
    settings.kb_dir = folder / "kb"
    settings.store = settings.store.replace(backend=backend)
    return settings


def _fresh_build(settings: Settings, cache_from: Path, folder: Path, embedder) -> dict:
    """Build the store from nothing with the embeddings (and token vectors) already cached; time it."""
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    settings.kb_path.mkdir(parents=True)
    for name in (EMBEDDING_CACHE_FILE, TOKEN_VECTORS_FILE):
        if (cache_from / name).exists():
            shutil.copyfile(cache_from / name, settings.kb_path / name)
    report = run_ingest(settings, [folder], IngestOptions(), embedder_factory=lambda: embedder)
    assert report.committed and report.passages_embedded == 0, report.summary()
    return {"seconds": report.seconds, "chunks": report.chunks_total, "documents": report.documents_total,
            "chunks_per_second": report.chunks_total / report.seconds}


def _doc_ids(chunks, doc_id_of_file: dict[str, str]) -> list[str]:
    return [doc_id_of_file.get(Path(c.source).name, c.source) for c in chunks]


def _score(retriever: HybridRetriever, questions: list[Question], doc_id_of_file: dict[str, str]) -> dict:
    scores: dict[str, dict[str, MethodScores]] = defaultdict(lambda: defaultdict(MethodScores))
    latencies: list[float] = []
    stages: dict[str, list[float]] = defaultdict(list)
    for i, q in enumerate(questions):
        half = "A" if i % 2 == HALVES["A"] else "B"
        gold = set(q.gold_doc_ids)
        for method, ranking in (("dense", retriever.dense(q.question)), ("bm25", retriever.keyword(q.question))):
            chunks = retriever.kb.get_chunks([cid for cid, _ in ranking[:max(KS)]])
            scores[half][method].add(_doc_ids(chunks, doc_id_of_file), gold, [c.text for c in chunks], q.answers)
        started = time.perf_counter()
        result = retriever.retrieve(q.question, top_k=max(KS), rerank=False)
        latencies.append(time.perf_counter() - started)
        for stage, seconds in result.timings.items():
            stages[stage].append(1000 * seconds)
        chunks = [p.chunk for p in result.passages]
        scores[half]["hybrid"].add(_doc_ids(chunks, doc_id_of_file), gold, [p.text for p in result.passages],
                                   q.answers)
    ms = sorted(1000 * s for s in latencies)
    return {"halves": {h: {m: s.summary() for m, s in per.items()} for h, per in scores.items()},
            "query_ms": {"p50": statistics.median(ms), "p95": ms[min(len(ms) - 1, int(0.95 * len(ms)))]},
            "stage_p50_ms": {stage: statistics.median(v) for stage, v in stages.items()}}


def run(args: argparse.Namespace) -> dict:
    base = load_settings()
    data = SETS[args.set]
    root = RESULTS_DIR / f"milvus-{args.set}"
    questions = [q for q in load_questions(data / "qa.jsonl", None, args.sample, args.seed) if q.answerable]
    only = None
    if args.corpus_docs is not None:
        only = corpus_subset(data / "corpus.jsonl", {d for q in questions for d in q.gold_doc_ids},
                             args.corpus_docs, args.seed)
    corpus = materialise_corpus(data / "corpus.jsonl", root, only)
    embedder = load_embedder(base)
    # Embed once, incrementally, into a base kept between runs: its caches feed the fresh builds below.
    seed = _store_settings(base, root / "embedded", "folder")
    run_ingest(seed, [corpus.folder], IngestOptions(progress=TerminalProgress()), embedder_factory=lambda: embedder)
    result = {"set": args.set, "questions": len(questions), "embedder": embedder.name, "command": " ".join(sys.argv),
              "date": time.strftime("%Y-%m-%d %H:%M"), "stores": {}}
    for backend in STORES:
        settings = _store_settings(base, root / backend, backend)
        ingest = _fresh_build(settings, seed.kb_path, corpus.folder, embedder)
        retriever = build_retriever(settings, embedder, with_reranker=False)
        retriever.retrieve(questions[0].question)  # the first query pays for loading; not timed
        result["stores"][backend] = {"ingest": ingest, **_score(retriever, questions, corpus.doc_id_of_file)}
        print(f"{backend}: {ingest['chunks']} chunks written in {ingest['seconds']:.1f} s", file=sys.stderr)
    return result


def _print(result: dict) -> None:
    print(f"\n## {result['set']}: {result['questions']} questions, embedder {result['embedder']}\n")
    print("| store | half | method | hit@1 | hit@5 | MRR@10 | n |")
    print("|---|---|---|---|---|---|---|")
    for backend, figures in result["stores"].items():
        for half in ("B", "A"):
            for method in ("hybrid", "dense", "bm25"):
                s = figures["halves"][half][method]
                print(f"| {backend} | {half} | {method} | {s['hit@1']:.3f} | {s['hit@5']:.3f} | {s['mrr@10']:.3f} "
                      f"| {s['n']} |")
    print("\n| store | query p50 ms | query p95 ms | p50 ms embed / dense / bm25 / merge | ingest s (embeddings "
          "cached) | chunks/s |")
    print("|---|---|---|---|---|---|")
    for backend, figures in result["stores"].items():
        q, i, st = figures["query_ms"], figures["ingest"], figures["stage_p50_ms"]
        stages = " / ".join(f"{st[s]:.1f}" for s in ("embed", "dense", "bm25", "merge"))
        print(f"| {backend} | {q['p50']:.1f} | {q['p95']:.1f} | {stages} | {i['seconds']:.1f} | "
              f"{i['chunks_per_second']:.1f} |")


def main(argv: list[str] | None = None) -> int:
    result = run(_parse_args(argv))
    _print(result)
    out = RESULTS_DIR / f"milvus_{result['set']}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
