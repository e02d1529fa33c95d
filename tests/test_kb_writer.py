"""Generations: atomic commit, leftovers of interrupted writers, garbage collection, and opening damaged bases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from store_fakes import assert_consistent

from app.config import IndexSettings
from ingest.records import ChunkDraft, DocumentRecord
from ingest.store.kb_layout import (
    INCOMPLETE_PREFIX,
    generation_paths,
    generations_dir,
    read_current,
    write_current,
)
from ingest.store.kb_writer import GenerationWriter, clean_leftovers, collect_garbage
from ingest.store.keyword_index import build_keyword_index
from ingest.store.knowledge_base import KnowledgeBase, KnowledgeBaseError
from ingest.testing.fake_embedder import FakeEmbedder

EMBEDDER = FakeEmbedder(16)


def _commit(kb_dir: Path, docs: dict[str, list[str]], remove: tuple[str, ...] = (), keep: int = 2,
            rebuild: bool = False) -> str:
    """One generation: documents ``docs`` (path -> chunk texts) added, paths ``remove`` removed."""
    writer = GenerationWriter.start(kb_dir, EMBEDDER.name, EMBEDDER.dimension, IndexSettings(keep_generations=keep),
                                    rebuild=rebuild)
    for path, texts in docs.items():
        digest = f"hash-{'|'.join(texts)}"
        drafts = [ChunkDraft(t, None, [], 0, len(t), i) for i, t in enumerate(texts)]
        ids = writer.catalog.add_chunks(digest, drafts)
        writer.add(ids, EMBEDDER.encode_passages(texts))
        writer.catalog.put_document(DocumentRecord(path, digest, 1.0, 1, len(texts), "text", path, 1.0))
    for path in remove:
        writer.catalog.remove_document(path)
    writer.remove(writer.catalog.remove_orphan_contents())
    manifest = writer.commit(build_keyword_index)
    collect_garbage(kb_dir, keep)
    return manifest.generation


def test_commit_makes_a_consistent_generation_live(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    name = _commit(kb_dir, {"/a.txt": ["量化模型", "蒸馏模型"], "/b.txt": ["检索增强"]})
    assert read_current(kb_dir) == name == "gen-000001"
    kb = assert_consistent(kb_dir)
    assert (kb.manifest.n_documents, kb.manifest.n_chunks, kb.manifest.embedder) == (2, 3, EMBEDDER.name)
    query = EMBEDDER.encode_queries(["检索增强"])
    _, ids = kb.index.search(query, 1)
    assert kb.get_chunks(ids[0].tolist())[0].text == "检索增强"
    kb.close()


def test_an_open_snapshot_survives_later_commits_and_garbage_collection(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    _commit(kb_dir, {"/a.txt": ["第一版"]})
    old = KnowledgeBase.open(kb_dir)
    _commit(kb_dir, {"/b.txt": ["第二版"]}, remove=("/a.txt",), keep=0)
    _commit(kb_dir, {"/c.txt": ["第三版"]}, keep=0)
    assert [d.path for d in old.documents()] == ["/a.txt"]
    assert [c.text for c in old.iter_chunks()] == ["第一版"]
    new = assert_consistent(kb_dir)
    assert [d.path for d in new.documents()] == ["/b.txt", "/c.txt"]
    assert sorted(p.name for p in generations_dir(kb_dir).iterdir()) == ["gen-000003"]
    old.close()
    new.close()


def test_garbage_collection_keeps_the_configured_number_of_old_generations(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    for i in range(5):
        _commit(kb_dir, {f"/{i}.txt": [f"文本{i}"]}, keep=2)
    assert sorted(p.name for p in generations_dir(kb_dir).iterdir()) == ["gen-000003", "gen-000004", "gen-000005"]


def test_recently_superseded_generations_wait_for_their_grace_period(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    _commit(kb_dir, {"/a.txt": ["第一版文本"]})
    _commit(kb_dir, {"/b.txt": ["第二版文本"]})
    assert collect_garbage(kb_dir, keep=0, grace_seconds=3600) == []
    assert collect_garbage(kb_dir, keep=0, grace_seconds=0) == ["gen-000001"]


def test_abort_and_leftovers_never_touch_the_live_generation(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    _commit(kb_dir, {"/a.txt": ["保留"]})
    writer = GenerationWriter.start(kb_dir, EMBEDDER.name, EMBEDDER.dimension, IndexSettings())
    writer.catalog.remove_document("/a.txt")
    writer.abort()
    assert not any(p.name.startswith(INCOMPLETE_PREFIX) for p in generations_dir(kb_dir).iterdir())
    # What a killed writer leaves: an incomplete folder, a finished but never-live generation, a CURRENT temp file.
    (generations_dir(kb_dir) / f"{INCOMPLETE_PREFIX}gen-000002").mkdir()
    (generations_dir(kb_dir) / "gen-000003").mkdir()
    (kb_dir / "CURRENT.tmp-999").write_text("gen-000003")
    assert sorted(clean_leftovers(kb_dir)) == [".incomplete-gen-000002", "CURRENT.tmp-999", "gen-000003"]
    assert [d.path for d in assert_consistent(kb_dir).documents()] == ["/a.txt"]
    assert _commit(kb_dir, {"/b.txt": ["新的"]}) == "gen-000002"


def test_another_embedder_is_refused_unless_rebuilding(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    _commit(kb_dir, {"/a.txt": ["文本"]})
    with pytest.raises(KnowledgeBaseError, match="--rebuild"):
        GenerationWriter.start(kb_dir, "other-model", 16, IndexSettings())
    with pytest.raises(KnowledgeBaseError, match="embedder 'test-hash:16', not 'other-model'"):
        KnowledgeBase.open(kb_dir, embedder="other-model")
    with pytest.raises(KnowledgeBaseError, match="16-dim"):
        KnowledgeBase.open(kb_dir, dimension=384)
    writer = GenerationWriter.start(kb_dir, "other-model", 16, IndexSettings(), rebuild=True)
    assert writer.catalog.count_documents() == 0
    writer.abort()


def test_missing_knowledge_base_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="no knowledge base here yet"):
        KnowledgeBase.open(tmp_path / "nothing")
    (tmp_path / "kb").mkdir()
    write_current(tmp_path / "kb", "gen-000042")
    with pytest.raises(KnowledgeBaseError, match="gen-000042.*does not exist"):
        KnowledgeBase.open(tmp_path / "kb")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _drop_chunk_row(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM chunks WHERE chunk_id = (SELECT MIN(chunk_id) FROM chunks)")
    conn.commit()
    conn.close()


def _edit_manifest(path: Path) -> None:
    data = json.loads(path.read_text())
    data["n_chunks"] += 1
    path.write_text(json.dumps(data))


DAMAGE = {
    # Damage to a file whose checksum the manifest recorded is found by the checksum, before any loader runs.
    "index truncated": ("index.faiss", _truncate, "no longer match the checksum"),
    "index deleted": ("index.faiss", Path.unlink, "missing"),
    "index garbage": ("index.faiss", lambda p: p.write_bytes(b"garbage!" * 64), "no longer match the checksum"),
    "catalog truncated": ("catalog.sqlite3", _truncate, "catalog"),
    "catalog garbage": ("catalog.sqlite3", lambda p: p.write_bytes(b"\x00" * 4096), "catalog"),
    "catalog row missing": ("catalog.sqlite3", _drop_chunk_row, "catalog.sqlite3: damaged"),
    "manifest garbage": ("manifest.json", lambda p: p.write_text("{not json"), "not valid JSON"),
    "manifest field missing": ("manifest.json", lambda p: p.write_text('{"embedder": "x"}'), "field 'dimension'"),
    "manifest wrong count": ("manifest.json", _edit_manifest, "index holds 6 vectors, manifest says 7"),
    "manifest binary": ("manifest.json", lambda p: p.write_bytes(b"\xff\xfe\x00"), "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_tampered_files_are_a_clear_error_on_open(tmp_path: Path, case: str) -> None:
    kb_dir = tmp_path / "kb"
    _commit(kb_dir, {"/a.txt": ["一", "二", "三"], "/b.txt": ["四", "五", "六"]})
    filename, damage, message = DAMAGE[case]
    damage(generation_paths(kb_dir, read_current(kb_dir)).root / filename)
    with pytest.raises(KnowledgeBaseError, match=message):
        KnowledgeBase.open(kb_dir)
    # The writer refuses to build on a damaged base instead of spreading the damage.
    with pytest.raises(KnowledgeBaseError, match="damaged|inconsistent"):
        GenerationWriter.start(kb_dir, EMBEDDER.name, EMBEDDER.dimension, IndexSettings())


def test_commit_refuses_when_catalog_and_vectors_disagree(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    _commit(kb_dir, {"/a.txt": ["文本"]})
    writer = GenerationWriter.start(kb_dir, EMBEDDER.name, EMBEDDER.dimension, IndexSettings())
    writer.catalog.add_chunks("h", [ChunkDraft("没有向量", None, [], 0, 4, 0)])  # no vector added for it
    with pytest.raises(KnowledgeBaseError, match="disagree"):
        writer.commit(build_keyword_index)
    writer.abort()
    assert read_current(kb_dir) == "gen-000001"
    assert_consistent(kb_dir).close()
