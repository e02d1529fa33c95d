"""Helpers shared by the store tests (knowledge-base logic, crash and lock tests); the corpora they ingest are
in ingest/testing/small_corpus.py (the fault-matrix benchmark uses them too)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.config import Settings
from ingest.store.kb_layout import read_current
from ingest.store.knowledge_base import KnowledgeBase
from ingest.store.vector_index import index_ids

REPO = Path(__file__).resolve().parent.parent
FAKE_SCRIPT = Path(__file__).resolve().parent / "ingest_with_fake_embedder.py"


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


def fake_cli(args: list[str], tmp_path: Path, delay: float = 0.0, extra: list[str] | None = None,
             env_extra: dict[str, str] | None = None, **popen: object) -> subprocess.Popen:
    """Start ``python -m ingest ARGS`` with the FakeEmbedder in a subprocess (home and cwd inside tmp_path)."""
    env = {**os.environ, "DOCQA_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1", **(env_extra or {})}
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
