"""Retrieval benchmark: dense only, BM25 only, hybrid (fusion), hybrid + rerank and the naive LangChain baseline,
side by side on one corpus and question set, with median latency per stage.

The corpus goes through the real ingest code (loaders, chunker, embedder, knowledge-base writer) into
``<work-dir>/kb``, reused and updated incrementally by later runs; embeddings are cached there too.

    .venv/bin/python -m bench.retrieval_bench --corpus ../shared/eval/cmrc2018_trial/corpus.jsonl \
        --questions ../shared/eval/cmrc2018_trial/qa.jsonl --name cmrc --sample 300

Writes bench/results/retrieval_<name>.json and prints a table. Hits are gold documents among the top-k passages.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from app.config import Settings, load_settings
from app.wiring import build_retriever
from bench.lib.eval_data import (
    Question,
    corpus_subset,
    load_questions,
    materialise_corpus,
)
from bench.lib.langchain_baseline import CachedEmbeddings, NaiveLangChainRetriever
from bench.lib.retrieval_metrics import KS, MethodScores
from ingest.records import Chunk
from retrieval.fusion import convex_combination, reciprocal_rank_fusion
from retrieval.hybrid_retriever import HybridRetriever

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Fusion variants evaluated from the same dense/BM25 lists (no extra model calls) with --grid.
GRID_RRF_K = (10, 30, 60, 100)
GRID_CONVEX_DENSE_WEIGHT = (0.3, 0.5, 0.7)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.retrieval_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True, help="JSONL {doc_id,title,text} or a folder of files")
    p.add_argument("--questions", type=Path, required=True, help="qa.jsonl (question, answers, gold_doc_ids)")
    p.add_argument("--name", required=True, help="name of this run's results file and work folder")
    p.add_argument("--work-dir", type=Path, help="where the knowledge base is built (default bench/results/kb-NAME)")
    p.add_argument("--limit", type=int, help="use only the first N questions")
    p.add_argument("--sample", type=int, help="use N questions drawn at random (seed --seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus-docs", type=int,
                   help="JSONL corpus only: keep the questions' gold docs plus random others, N docs in all")
    p.add_argument("--rerank-limit", type=int, help="evaluate the reranker on the first N questions only")
    p.add_argument("--reranker", help="reranker to evaluate (default: retrieval.reranker setting)")
    p.add_argument("--no-rerank", action="store_true", help="skip the reranker")
    p.add_argument("--no-baseline", action="store_true", help="skip the LangChain baseline")
    p.add_argument("--grid", action="store_true", help="also score fusion variants (RRF k, convex weights)")
    return p.parse_args(argv)


def _doc_ids(chunks: list[Chunk], doc_id_of_file: dict[str, str]) -> list[str]:
    return [doc_id_of_file.get(Path(c.source).name, c.source) for c in chunks]


class Bench:
    def __init__(self, retriever: HybridRetriever, doc_id_of_file: dict[str, str]):
        self.retriever = retriever
        self.doc_id_of_file = doc_id_of_file
        self.scores: dict[str, MethodScores] = defaultdict(MethodScores)
        self.stage_times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def _chunks(self, ranking: list[tuple[int, float]]) -> list[Chunk]:
        return self.retriever.kb.get_chunks([cid for cid, _ in ranking[:max(KS)]])

    def _add_ranking(self, method: str, ranking: list[tuple[int, float]], q: Question,
                     seconds: float | None = None) -> None:
        chunks = self._chunks(ranking)
        self.scores[method].add(_doc_ids(chunks, self.doc_id_of_file), set(q.gold_doc_ids),
                                [c.text for c in chunks], q.answers, seconds)

    def single_lists(self, q: Question, grid: bool) -> None:
        started = time.perf_counter()
        dense = self.retriever.dense(q.question)
        dense_seconds = time.perf_counter() - started
        started = time.perf_counter()
        bm25 = self.retriever.keyword(q.question)
        bm25_seconds = time.perf_counter() - started
        self._add_ranking("dense", dense, q, dense_seconds)
        self._add_ranking("bm25", bm25, q, bm25_seconds)
        if grid:
            lists = {"dense": dense, "bm25": bm25}
            for k in GRID_RRF_K:
                self._add_ranking(f"grid rrf k={k}", reciprocal_rank_fusion(lists, k), q)
            for w in GRID_CONVEX_DENSE_WEIGHT:
                self._add_ranking(f"grid convex dense={w}",
                                  convex_combination(lists, {"dense": w, "bm25": 1 - w}), q)

    def hybrid(self, method: str, q: Question, rerank: bool) -> None:
        """Score the full retriever and time its stages."""
        result = self.retriever.retrieve(q.question, top_k=max(KS), rerank=rerank)
        chunks = [p.chunk for p in result.passages]
        self.scores[method].add(_doc_ids(chunks, self.doc_id_of_file), set(q.gold_doc_ids),
                                [p.text for p in result.passages], q.answers,
                                result.timings["total"])
        for stage, seconds in result.timings.items():
            self.stage_times[method][stage].append(seconds)


def _baseline_scores(questions: list[Question], baseline: NaiveLangChainRetriever,
                     scores: MethodScores) -> None:
    for q in questions:
        started = time.perf_counter()
        docs = baseline.search(q.question, max(KS))
        seconds = time.perf_counter() - started
        scores.add([d.metadata["doc_id"] for d in docs], set(q.gold_doc_ids), [d.page_content for d in docs],
                   q.answers, seconds)


def _print_table(name: str, summaries: dict[str, dict[str, float]],
                 stages: dict[str, dict[str, float]]) -> None:
    columns = [f"hit@{k}" for k in KS] + ["mrr@10", "answer@5", "median_ms", "n"]
    print(f"\n## {name}\n")
    print("| method | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for method, s in summaries.items():
        cells = [f"{s[c]:.3f}" if c.startswith(("hit", "mrr", "answer")) else
                 (f"{s[c]:.1f}" if c == "median_ms" and c in s else str(s.get(c, "-"))) for c in columns]
        print(f"| {method} | " + " | ".join(cells) + " |")
    for method, per_stage in stages.items():
        print(f"\nmedian ms per stage, {method}: "
              + ", ".join(f"{stage} {ms:.1f}" for stage, ms in per_stage.items()))


def run(args: argparse.Namespace, settings: Settings) -> dict:
    from app.wiring import load_embedder, run_ingest
    from ingest.pipeline.ingest_pipeline import IngestOptions
    from ingest.pipeline.progress import TerminalProgress

    work_dir = args.work_dir or RESULTS_DIR / f"kb-{args.name}"
    work_dir.mkdir(parents=True, exist_ok=True)
    settings.kb_dir = work_dir / "kb"
    questions = [q for q in load_questions(args.questions, args.limit, args.sample, args.seed) if q.answerable]
    only = None
    if args.corpus_docs is not None:
        only = corpus_subset(args.corpus, {d for q in questions for d in q.gold_doc_ids}, args.corpus_docs, args.seed)
    corpus = materialise_corpus(args.corpus, work_dir, only)
    embedder = load_embedder(settings)

    started = time.perf_counter()
    report = run_ingest(settings, [corpus.folder], IngestOptions(progress=TerminalProgress()),
                        embedder_factory=lambda: embedder)
    ingest_seconds = time.perf_counter() - started
    print(f"ingest: {report.chunks_total} chunks from {report.documents_total} documents in {ingest_seconds:.0f}s "
          f"({report.passages_embedded} passages embedded)", file=sys.stderr)

    # The reranker is built as the app builds it (MaxSim reads the token vectors the ingest stored above); each
    # question is then retrieved with and without it.
    settings.retrieval.reranker = args.reranker or settings.retrieval.reranker
    settings.retrieval.rerank = not args.no_rerank
    retriever = build_retriever(settings, embedder)
    bench = Bench(retriever, corpus.doc_id_of_file)
    rerank_n = len(questions) if args.rerank_limit is None else min(args.rerank_limit, len(questions))
    for i, q in enumerate(questions):
        bench.single_lists(q, args.grid)
        bench.hybrid("hybrid (fusion)", q, rerank=False)
        if not args.no_rerank and i < rerank_n:
            bench.hybrid("hybrid + rerank", q, rerank=True)
            if rerank_n < len(questions):
                bench.hybrid(f"hybrid (fusion), first {rerank_n}", q, rerank=False)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(questions)} questions", file=sys.stderr)

    summaries = {}
    baseline_chunks = None
    if not args.no_baseline:
        baseline = NaiveLangChainRetriever(corpus.texts, CachedEmbeddings(
            embedder, work_dir / "baseline_embeddings.sqlite3", settings.embedder.batch_size))
        baseline_chunks = baseline.n_chunks
        _baseline_scores(questions, baseline, bench.scores["LangChain naive (1000/200, FAISS)"])
    order = ["dense", "bm25", "hybrid (fusion)", f"hybrid (fusion), first {rerank_n}", "hybrid + rerank",
             "LangChain naive (1000/200, FAISS)"]
    for method in order + sorted(m for m in bench.scores if m not in order):
        if method in bench.scores:
            summaries[method] = bench.scores[method].summary()
    stages = {m: {s: 1000 * statistics.median(v) for s, v in per.items()} for m, per in bench.stage_times.items()}
    return {"name": args.name, "corpus": str(args.corpus), "questions": str(args.questions),
            "n_questions": len(questions), "chunks": report.chunks_total, "documents": report.documents_total,
            "baseline_chunks": baseline_chunks, "embedder": embedder.name,
            "reranker": None if args.no_rerank else (args.reranker or settings.retrieval.reranker),
            "retrieval_settings": vars(settings.retrieval), "chunking": vars(settings.chunking),
            "date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv),
            "methods": summaries, "median_stage_ms": stages}


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = load_settings()
    result = run(args, settings)
    _print_table(f"{result['name']}: {result['n_questions']} questions, {result['chunks']} chunks "
                 f"(baseline {result['baseline_chunks']} chunks)", result["methods"], result["median_stage_ms"])
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"retrieval_{args.name}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
