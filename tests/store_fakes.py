"""A fast deterministic embedder for the store tests (knowledge-base logic, crash and lock tests).

It hashes character bigrams into a normalised vector: not a language model, only a stand-in so the ingest
machinery can be tested in seconds. End-to-end tests use the real embedder.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

FAKE_DIM = 32


class HashEmbedder:
    """Deterministic passage vectors; ``delay`` seconds per batch makes a run slow enough to kill mid-way;
    ``hold_until`` (a path) holds every batch until that file exists."""

    def __init__(self, dimension: int = FAKE_DIM, delay: float = 0.0, name: str = "test-hash",
                 hold_until: Path | None = None):
        self.name = f"{name}:{dimension}"
        self.dimension = dimension
        self.delay = delay
        self.hold_until = hold_until
        self.calls = 0
        self.passages = 0

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for i in range(max(len(text) - 1, 1)):
            digest = hashlib.blake2b(text[i:i + 2].encode("utf-8"), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dimension] += 1.0
        return vector / max(float(np.linalg.norm(vector)), 1e-9)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def encode_passages_with_tokens(self, texts: list[str],
                                    show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        return self.encode_passages(texts), self.token_embeddings(texts, is_query=False)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.passages += len(texts)
        if self.delay:
            time.sleep(self.delay)
        deadline = time.monotonic() + 300
        while self.hold_until is not None and not self.hold_until.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.encode_queries(texts)

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        return [self.encode_queries(list(t) or [" "]) for t in texts]


# --- helpers shared by the store tests ---------------------------------------------------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from app.config import Settings  # noqa: E402
from ingest.store.kb_layout import read_current  # noqa: E402
from ingest.store.knowledge_base import KnowledgeBase  # noqa: E402
from ingest.store.vector_index import index_ids  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FAKE_SCRIPT = Path(__file__).resolve().parent / "ingest_with_fake_embedder.py"

# Distinct little topics so each file chunks into a few passages of its own.
TOPICS = ["量化", "蒸馏", "剪枝", "检索", "排序", "分词", "注意力", "位置编码", "微调", "对齐", "推理", "缓存",
          "批处理", "并行", "采样", "评测", "幻觉", "提示词", "向量", "索引"]


def write_corpus(folder: Path, n_files: int, paragraphs: int = 3, tag: str = "") -> list[Path]:
    """``n_files`` small Chinese text files with distinct content (a few chunks each with small chunk sizes)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        topic = TOPICS[i % len(TOPICS)]
        body = "\n\n".join(
            f"第{p + 1}节：关于{topic}{i}{tag}的说明。{topic}{i}是本文件第{p + 1}段讨论的主题，"
            f"它与编号{i * 100 + p}的实验有关，结论记录在这里以便检索。" for p in range(paragraphs))
        path = folder / f"doc_{i:03d}.txt"
        path.write_text(f"{topic}{i}{tag}\n\n{body}\n", encoding="utf-8")
        paths.append(path)
    return paths


def store_settings(tmp_path: Path) -> Settings:
    """Settings for a knowledge base under ``tmp_path`` with small chunks (more chunks from small files)."""
    settings = Settings(data_dir=tmp_path / "home")
    settings.kb_dir = tmp_path / "kb"
    settings.chunking.chunk_size = 80
    settings.chunking.chunk_overlap = 10
    settings.chunking.min_chunk_chars = 10
    settings.embedder.batch_size = 4
    settings.embedder.passages_per_call = 4  # the cache is written per call: small calls, fine-grained resumes
    return settings


def write_config(path: Path, batch_size: int = 4, keep_generations: int = 2, gc_grace_seconds: float = 60.0) -> Path:
    path.write_text("[chunking]\nchunk_size = 80\nchunk_overlap = 10\nmin_chunk_chars = 10\n"
                    f"[embedder]\nbatch_size = {batch_size}\npassages_per_call = {batch_size}\n"
                    f"[index]\nkeep_generations = {keep_generations}\ngc_grace_seconds = {gc_grace_seconds}\n",
                    encoding="utf-8")
    return path


def fake_cli(args: list[str], tmp_path: Path, delay: float = 0.0, extra: list[str] | None = None,
             **popen: object) -> subprocess.Popen:
    """Start ``python -m ingest ARGS`` with the HashEmbedder in a subprocess (home and cwd inside tmp_path)."""
    env = {**os.environ, "DOCQA_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    env.pop("DOCQA_CONFIG", None)
    command = [sys.executable, str(FAKE_SCRIPT), "--delay", str(delay), *(extra or []), "--", *args]
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def assert_consistent(kb_dir: Path) -> KnowledgeBase | None:
    """Open the live generation (None if there is none) and check catalog, FAISS and BM25 hold the same ids."""
    if read_current(kb_dir) is None:
        return None
    kb = KnowledgeBase.open(kb_dir)
    catalog_ids = kb.chunk_ids()
    assert sorted(index_ids(kb.index).tolist()) == catalog_ids
    assert not kb.notices  # the keyword index was read from disk, not rebuilt
    assert len(kb.keyword_index) == len(catalog_ids)
    assert len(catalog_ids) == kb.manifest.n_chunks == len({c.chunk_id for c in kb.iter_chunks()})
    for doc in kb.documents():
        assert doc.n_chunks == sum(1 for c in kb.iter_chunks() if c.doc_id == doc.content_hash)
    return kb
