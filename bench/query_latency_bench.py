"""Per-stage query latency (embed, dense, BM25, fuse, rerank, merge) at ~10k chunks, and LLM TTFT / tokens/s.

The 10k-chunk knowledge base is written by the real store (GenerationWriter: SQLite catalog, FAISS index,
BM25 keyword index, and the token-vector store the MaxSim reranker reads, filled with every chunk's real token
vectors) and searched by the real HybridRetriever with the configured reranker.

Texts are all real: the shared eval corpora and seeds, chunked with the default 400/60 characters (the ~2.2k
chunks embedded by bench/real_embeddings.py) and again with other chunk sizes (340, 460, 370, 430 ... characters)
until the target is reached: distinct real texts of realistic lengths, so BM25 statistics, the reranker's input
and neighbour merging behave as on a real collection. Embedding ~8k more passages would take hours on 2 shared
cores, so the dense vector of a re-chunked passage is sampled around the real vector of the 400-character chunk
at the same relative position of the same document (bench/sampled_vectors.py). This affects which chunks the
dense stage returns, not how long any stage takes.

Queries: real CMRC/DRCD questions, one at a time, after warm-up. Generation: AnswerPipeline.stream on a few
questions with the packaged GGUF model through the configured backend (llama.cpp on CPU).

Run: ``DOCQA_HOME=bench/results/home nice -n 10 .venv/bin/python -m bench.query_latency_bench``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from app.config import ChunkingSettings, Settings, load_settings
from bench.lib.real_embeddings import (
    EVAL_DIR,
    RESULTS_DIR,
    SEEDS_DIR,
    chunk_texts,
    load_real_corpus,
)
from bench.lib.sampled_vectors import AroundRealSampler
from ingest.embedding.openvino_ir import resolve_backend
from ingest.records import ChunkDraft, DocumentRecord

STAGES = ("embed", "dense", "bm25", "fuse", "rerank", "merge", "total")
EXTRA_CHUNK_SIZES = (340, 460, 370, 430, 310, 490, 355, 445)


def source_documents() -> list[str]:
    """The texts bench/real_embeddings.py chunks, in the same order."""
    texts: list[str] = []
    for corpus in sorted(EVAL_DIR.glob("*/corpus.jsonl")):
        with corpus.open(encoding="utf-8") as fh:
            texts.extend(json.loads(line)["text"] for line in fh if line.strip())
    texts.extend(p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt")))
    return texts


def collection(target: int) -> tuple[list[list[str]], list[np.ndarray]]:
    """Documents (lists of chunk texts) and their chunk vectors, about ``target`` chunks in all."""
    real = load_real_corpus()
    base = ChunkingSettings()
    docs = source_documents()
    per_doc = [chunk_texts([d], base) for d in docs]
    offsets = np.cumsum([0] + [len(c) for c in per_doc])
    assert offsets[-1] == len(real.passages), "real embedding cache does not match the corpus"
    sampler = AroundRealSampler(real.passage_vectors, seed=0)
    texts = list(per_doc)
    vectors = [real.passage_vectors[offsets[i]:offsets[i + 1]] for i in range(len(docs))]
    total = int(offsets[-1])
    for size in EXTRA_CHUNK_SIZES:
        if total >= target:
            break
        settings = ChunkingSettings(chunk_size=size, chunk_overlap=base.chunk_overlap,
                                    min_chunk_chars=base.min_chunk_chars)
        for i, doc in enumerate(docs):
            chunks = chunk_texts([doc], settings)
            if not chunks or offsets[i + 1] == offsets[i]:
                continue
            n_real = offsets[i + 1] - offsets[i]
            parents = [offsets[i] + min(n_real - 1, int(j * n_real / len(chunks))) for j in range(len(chunks))]
            texts.append(chunks)
            vectors.append(sampler.perturb(real.passage_vectors[parents]))
            total += len(chunks)
    return texts, vectors


def write_knowledge_base(settings: Settings, embedder_name: str, dimension: int,
                         texts: list[list[str]], vectors: list[np.ndarray]) -> int:
    """Store the collection through the real writer; returns the number of chunks."""
    from ingest.store.kb_lock import WriterLock
    from ingest.store.kb_writer import GenerationWriter
    from ingest.store.keyword_index import build_keyword_index

    lock = WriterLock(settings.kb_path)
    lock.acquire()
    try:
        writer = GenerationWriter.start(settings.kb_path, embedder_name, dimension, settings.index, rebuild=True)
        for d, (chunks, vecs) in enumerate(zip(texts, vectors)):
            content_hash = f"bench-{d:06d}"
            drafts = [ChunkDraft(t, None, [], 0, len(t), i) for i, t in enumerate(chunks)]
            writer.add(writer.catalog.add_chunks(content_hash, drafts), vecs)
            writer.catalog.put_document(DocumentRecord(path=f"bench/doc{d:06d}.txt", content_hash=content_hash,
                                                       mtime=0.0, size=sum(map(len, chunks)), n_chunks=len(chunks)))
        manifest = writer.commit(lambda ids, txts, out: build_keyword_index(ids, txts, out, settings.retrieval))
        return manifest.n_chunks
    finally:
        lock.release()


def fill_token_store(path: Path, settings: Settings, embedder: object, texts: list[str]) -> None:
    """Real token vectors of every chunk, stored (float16, then product-quantised) as the ingest stores them.

    The file is kept under bench/results and copied into each run's knowledge base: encoding ~11k passages takes
    ~7 minutes, and the store only ever gains the texts it lacks."""
    from ingest.embedding.embedding_cache import passage_fingerprint
    from ingest.store.token_store import TokenVectorStore

    store = TokenVectorStore.open(path, passage_fingerprint(embedder.name, embedder.dimension, settings.embedder),
                                  embedder.dimension)
    try:
        missing = store.missing(texts)
        started = time.perf_counter()
        for start in range(0, len(missing), settings.embedder.passages_per_call):
            batch = missing[start:start + settings.embedder.passages_per_call]
            store.add(batch, embedder.token_embeddings(batch, is_query=False), settings.index)
            done = start + len(batch)
            print(f"token vectors: {done}/{len(missing)} ({done / (time.perf_counter() - started):.1f}/s)",
                  flush=True)
    finally:
        store.close()


def percentiles(values: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(values, 50) * 1000), "p95_ms": float(np.percentile(values, 95) * 1000)}


def time_retrieval(retriever: object, questions: list[str], warmup: int,
                   rerank: bool) -> dict[str, dict[str, float]]:
    for q in questions[:warmup]:
        retriever.retrieve(q, rerank=rerank)
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES + ("total_cpu",)}
    for q in questions[warmup:]:
        cpu = time.process_time()
        timings = retriever.retrieve(q, rerank=rerank).timings
        # CPU seconds of all threads: on a shared machine wall time is mostly waiting; on an idle 2-core machine
        # the wall time lies between total_cpu / 2 (both cores busy) and total_cpu.
        per_stage["total_cpu"].append(time.process_time() - cpu)
        for stage in STAGES:
            per_stage[stage].append(timings.get(stage, 0.0))
    return {stage: percentiles(values) for stage, values in per_stage.items()}


def time_generation(settings: Settings, retriever: object, embedder: object, questions: list[str]) -> list[dict]:
    from app.answer.answer_pipeline import DoneEvent
    from app.wiring import assemble_pipeline, build_generator

    started = time.perf_counter()
    generator = build_generator(settings)
    load_s = time.perf_counter() - started
    pipeline = assemble_pipeline(retriever, generator, embedder, settings)
    runs = []
    for q in questions:
        asked = time.perf_counter()
        first = None
        for event in pipeline.stream(q):
            if first is None and type(event).__name__ == "TokenEvent":
                first = time.perf_counter() - asked
            if isinstance(event, DoneEvent):
                answer = event.answer
        t = answer.timings
        tokens = generator.count_tokens(answer.text)
        decode_s = t.get("generate", 0.0) - t.get("first_token", 0.0)
        runs.append({"question": q, "refused": answer.refused, "model_load_s": load_s,
                     "retrieve_s": t.get("retrieve"), "llm_first_token_s": t.get("first_token"),
                     "question_to_first_token_s": first, "generate_s": t.get("generate"), "answer_tokens": tokens,
                     "decode_tokens_per_s": (tokens - 1) / decode_s if decode_s > 0 and tokens > 1 else None})
        print(f"  gen: first token {t.get('first_token', 0):.2f} s after the prompt was ready "
              f"({first:.2f} s after the question), {tokens} tokens, "
              f"{runs[-1]['decode_tokens_per_s'] or 0:.1f} tok/s decoding", flush=True)
    return runs


def time_prompt_eval(settings: Settings, passages: list[str], counts: list[int]) -> list[dict]:
    """Time to the first token for prompts of 1, 2, 4 ... real passages: prompt evaluation speed of the LLM."""
    import dataclasses

    from app.wiring import build_generator

    generator = build_generator(settings)
    one_token = dataclasses.replace(settings.generation, max_new_tokens=1)
    # Untimed first call: llama.cpp pages the model file in on first use.
    list(generator.stream([{"role": "user", "content": passages[0]}], one_token))
    runs = []
    for count in counts:
        context = "\n\n".join(passages[:count])
        messages = [{"role": "system", "content": "根据资料回答问题。"},
                    {"role": "user", "content": f"{context}\n\n问题：这段资料讲了什么？"}]
        tokens = generator.count_prompt_tokens(messages)
        cpu, wall = time.process_time(), time.perf_counter()
        list(generator.stream(messages, one_token))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        runs.append({"prompt_tokens": tokens, "first_token_s": wall, "cpu_s": cpu})
        print(f"  prompt {tokens} tokens: first token after {wall:.1f} s wall, {cpu:.1f} s CPU "
              f"({tokens / wall:.0f} tokens/s wall)", flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=40, help="timed queries (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--gen-questions", type=int, default=3, help="questions answered by the LLM (0 = skip)")
    parser.add_argument("--prompt-eval-only", type=int, nargs="*", metavar="PASSAGES",
                        help="only time the LLM's first token for prompts of this many real passages (e.g. 1 2 4 8)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "query_latency_bench.json")
    args = parser.parse_args()
    if args.prompt_eval_only is not None:
        counts = args.prompt_eval_only or [1, 2, 4, 8]
        runs = time_prompt_eval(load_settings(), load_real_corpus().passages[100:], counts)
        out = RESULTS_DIR / "prompt_eval_bench.json"
        out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M %Z"), "load_avg": os.getloadavg(),
                                   "runs": runs}, indent=1), encoding="utf-8")
        print(f"wrote {out}")
        return

    from app.wiring import build_retriever, load_embedder
    from ingest.store.kb_layout import TOKEN_VECTORS_FILE

    settings = load_settings()
    embedder = load_embedder(settings)
    texts, vectors = collection(args.chunks)
    real = load_real_corpus()
    rng = np.random.default_rng(0)
    questions = [real.questions[i] for i in rng.choice(len(real.questions), args.queries + args.warmup,
                                                       replace=False)]
    token_store = RESULTS_DIR / "query_latency_token_vectors.sqlite3"
    fill_token_store(token_store, settings, embedder, [t for doc in texts for t in doc])
    with tempfile.TemporaryDirectory() as tmp:
        settings.kb_dir = Path(tmp) / "kb"
        started = time.perf_counter()
        n_chunks = write_knowledge_base(settings, embedder.name, embedder.dimension, texts, vectors)
        shutil.copyfile(token_store, settings.kb_path / TOKEN_VECTORS_FILE)
        write_s = time.perf_counter() - started
        retriever = build_retriever(settings, embedder, with_reranker=True)
        kb = retriever.kb
        token_store_mb = (settings.kb_path / TOKEN_VECTORS_FILE).stat().st_size / 1e6
        print(f"knowledge base: {n_chunks} chunks ({kb.manifest.index_type} index) written in {write_s:.1f} s; "
              f"token vectors {token_store_mb:.0f} MB ({token_store_mb * 1000 / n_chunks:.1f} KB per chunk)")
        configured = settings.retrieval.rerank
        stages = {}
        # Both ways, whatever the configured default: the reranker is the costly stage.
        for rerank in (configured, not configured):
            label = f"rerank {'on: ' + retriever.reranker.name if rerank else 'off'}" + \
                (" (configured default)" if rerank == configured else "")
            stages[label] = time_retrieval(retriever, questions, args.warmup, rerank)
            print(f"\n{label}, {settings.retrieval.rerank_candidates} rerank candidates\n"
                  "| stage | p50 ms | p95 ms |\n|---|---|---|")
            for stage, p in stages[label].items():
                print(f"| {stage} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} |", flush=True)
        generation = (time_generation(settings, retriever, embedder, questions[:args.gen_questions])
                      if args.gen_questions else [])
        kb.close()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(), "chunks": n_chunks, "kb_write_s": write_s,
            "token_store_mb": token_store_mb, "queries": args.queries,
            "reranker": settings.retrieval.reranker, "rerank_candidates": settings.retrieval.rerank_candidates,
            "embedder_backend": resolve_backend(settings.embedder.backend, settings.embedder.device)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "stages": stages,
                                    "generation": generation}, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
