"""The incremental ingest run with real loaders, chunker, FAISS and BM25 and a fast hashing embedder.

The end-to-end tests with the real embedder are at the bottom (marked slow).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from store_fakes import assert_consistent, store_settings

from app.config import Settings
from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
from ingest.pipeline.ingest_report import IngestReport
from ingest.store.kb_layout import generations_dir, read_current
from ingest.store.knowledge_base import KnowledgeBase, KnowledgeBaseError
from ingest.testing.fake_embedder import FakeEmbedder
from ingest.testing.small_corpus import write_corpus


def _ingest(settings: Settings, paths: list[Path], embedder: FakeEmbedder | None = None,
            **options: bool) -> IngestReport:
    embedder = embedder or FakeEmbedder()
    return run_ingest(settings, paths, IngestOptions(**options), embedder_factory=lambda: embedder)


def _snapshot(kb_dir: Path) -> dict[str, list[str]]:
    """Path -> chunk texts of the live generation."""
    kb = assert_consistent(kb_dir)
    chunks: dict[str, list[str]] = {}
    for chunk in kb.iter_chunks():
        chunks.setdefault(chunk.doc_id, []).append(chunk.text)
    result = {doc.path: chunks.get(doc.content_hash, []) for doc in kb.documents()}
    kb.close()
    return result


def _top_texts(kb_dir: Path, query: str, k: int = 3) -> list[str]:
    kb = KnowledgeBase.open(kb_dir)
    _, ids = kb.index.search(FakeEmbedder().encode_queries([query]), k)
    texts = [c.text for c in kb.get_chunks(ids[0].tolist())]
    kb.close()
    return texts


def test_incremental_rerun_skips_replaces_removes(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = write_corpus(tmp_path / "docs", 6)
    first = _ingest(settings, [tmp_path / "docs"])
    assert (first.files_added, first.files_failed, first.committed) == (6, 0, True)
    assert first.chunks_total == first.chunks_added > 6
    before = _snapshot(settings.kb_path)

    embedder = FakeEmbedder()
    again = _ingest(settings, [tmp_path / "docs"], embedder)
    assert (again.files_skipped, again.committed, again.chunks_added, embedder.passages) == (6, False, 0, 0)
    assert read_current(settings.kb_path) == first.generation

    docs[1].write_text("全新的内容：这一份文件被彻底改写了，讨论的是稀疏注意力。\n\n第二段继续讨论稀疏注意力的实现细节。",
                       encoding="utf-8")
    docs[2].unlink()
    os.utime(docs[3], (1_000_000_000, 1_000_000_000))  # touched: same bytes, new mtime
    third = _ingest(settings, [tmp_path / "docs"], embedder)
    assert (third.files_updated, third.files_removed, third.files_skipped, third.files_added) == (1, 1, 4, 0)
    after = _snapshot(settings.kb_path)
    assert str(docs[2]) not in after
    assert any("稀疏注意力" in t for t in after[str(docs[1])])
    assert not any(t in before[str(docs[1])] for t in after[str(docs[1])])
    assert after[str(docs[3])] == before[str(docs[3])]
    assert third.chunks_removed == len(before[str(docs[1])]) + len(before[str(docs[2])])
    assert third.chunks_total == sum(len(v) for v in after.values())
    assert embedder.passages == len(after[str(docs[1])])  # only the changed file was embedded
    assert "稀疏注意力" in _top_texts(settings.kb_path, "稀疏注意力的实现细节")[0]

    fourth = _ingest(settings, [tmp_path / "docs"], embedder)  # the touched mtime is now recorded
    assert (fourth.committed, fourth.files_skipped) == (False, 5)


def test_duplicates_are_embedded_once_and_retrieved_once(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = write_corpus(tmp_path / "docs", 3)
    shutil.copy(docs[0], tmp_path / "docs" / "copy_in_same_run.txt")
    embedder = FakeEmbedder()
    report = _ingest(settings, [tmp_path / "docs"], embedder)
    unique_chunks = report.chunks_total
    assert (report.files_added, report.files_duplicate) == (4, 1)
    assert embedder.passages == unique_chunks
    (tmp_path / "more").mkdir()
    shutil.copy(docs[1], tmp_path / "more" / "later_copy.txt")
    later = _ingest(settings, [tmp_path / "docs", tmp_path / "more"], embedder)
    assert (later.files_added, later.files_duplicate, later.chunks_added) == (1, 1, 0)
    assert embedder.passages == unique_chunks
    kb = assert_consistent(settings.kb_path)
    assert kb.manifest.n_documents == 5 and kb.manifest.n_chunks == unique_chunks
    _, ids = kb.index.search(FakeEmbedder().encode_queries([docs[1].read_text(encoding="utf-8")[:40]]), 10)
    found = [c.chunk_id for c in kb.get_chunks(ids[0].tolist())]
    assert len(found) == len(set(found))
    kb.close()
    # Removing the first path keeps the content for its copy; removing both drops it.
    docs[0].unlink()
    assert _ingest(settings, [tmp_path / "docs"]).chunks_removed == 0
    (tmp_path / "docs" / "copy_in_same_run.txt").unlink()
    assert _ingest(settings, [tmp_path / "docs"]).chunks_removed > 0
    assert_consistent(settings.kb_path).close()


def test_moved_file_is_not_embedded_again(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = write_corpus(tmp_path / "docs", 2)
    _ingest(settings, [tmp_path / "docs"])
    docs[0].rename(tmp_path / "docs" / "renamed.txt")
    embedder = FakeEmbedder()
    report = _ingest(settings, [tmp_path / "docs"], embedder)
    assert (report.files_added, report.files_removed, report.chunks_added, report.chunks_removed) == (1, 1, 0, 0)
    assert embedder.passages == 0
    assert str(tmp_path / "docs" / "renamed.txt") in _snapshot(settings.kb_path)


def test_files_outside_the_given_paths_are_kept(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    write_corpus(tmp_path / "a", 2, tag="甲")
    write_corpus(tmp_path / "b", 2, tag="乙")
    _ingest(settings, [tmp_path / "a"])
    _ingest(settings, [tmp_path / "b"])
    paths = set(_snapshot(settings.kb_path))
    assert {Path(p).parent.name for p in paths} == {"a", "b"} and len(paths) == 4


BAD_INPUTS = {
    "binary.txt": b"\x00\x01\x02\x03 binary",
    "empty.md": b"",
    "blank.txt": b"   \n\n  ",
    "broken.pdf": b"%PDF-1.4 this is not really a pdf",
    "broken.docx": b"PK\x03\x04 not a zip",
    "latin1.txt": "café résumé naïve".encode("latin-1"),  # readable: decoded, not a failure
}


def test_bad_inputs_are_reported_and_do_not_stop_or_damage_anything(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = write_corpus(tmp_path / "docs", 3)
    _ingest(settings, [tmp_path / "docs"])
    before = _snapshot(settings.kb_path)
    for name, data in BAD_INPUTS.items():
        (tmp_path / "docs" / name).write_bytes(data)
    docs[0].write_bytes(b"\x00\x00 now binary")  # a good file turns bad: its old version must stay
    (tmp_path / "docs" / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    good = tmp_path / "docs" / "new_good.txt"
    good.write_text("一份新的好文件，讨论混合专家模型的路由。", encoding="utf-8")
    report = _ingest(settings, [tmp_path / "docs", tmp_path / "no_such_folder", tmp_path / "notes.xyz"])
    failed = {Path(f.path).name: f.reason for f in report.failures}
    assert set(failed) == {"binary.txt", "empty.md", "blank.txt", "broken.pdf", "broken.docx", docs[0].name,
                           "dangling.txt", "no_such_folder", "notes.xyz"}
    assert all(reason.strip() and "\n" not in reason for reason in failed.values())
    assert report.committed and report.files_added == 2  # new_good.txt and latin1.txt
    after = _snapshot(settings.kb_path)
    assert after[str(docs[0])] == before[str(docs[0])]
    assert {p: after[p] for p in before} == before
    assert str(good) in after


def test_too_many_chunks_and_too_large_files_are_refused_by_limits(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    write_corpus(tmp_path / "docs", 1)
    (tmp_path / "docs" / "long.txt").write_text("很长的文件。" * 400, encoding="utf-8")
    settings.limits.max_chunks_per_document = 10
    report = _ingest(settings, [tmp_path / "docs"])
    assert [Path(f.path).name for f in report.failures] == ["long.txt"]
    assert "max_chunks_per_document" in report.failures[0].reason
    settings.limits.max_file_mb = 0.001
    report = _ingest(settings, [tmp_path / "docs"])
    assert "max_file_mb" in report.failures[0].reason and report.files_skipped == 1


def test_embedding_cache_spares_work_and_rebuild_changes_embedder(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    write_corpus(tmp_path / "docs", 3)
    first = _ingest(settings, [tmp_path / "docs"])
    embedder = FakeEmbedder()
    rebuilt = _ingest(settings, [tmp_path / "docs"], embedder, rebuild=True)
    assert (embedder.passages, rebuilt.passages_cached, rebuilt.chunks_total) == (0, first.chunks_total,
                                                                                  first.chunks_total)
    other = FakeEmbedder(48, name="other")
    (tmp_path / "docs" / "extra.txt").write_text("新增文件需要嵌入。", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="--rebuild"):
        _ingest(settings, [tmp_path / "docs"], other)
    report = _ingest(settings, [tmp_path / "docs"], other, rebuild=True)
    kb = assert_consistent(settings.kb_path)
    assert (kb.manifest.embedder, kb.manifest.dimension, report.passages_embedded) == ("other:48", 48,
                                                                                      report.chunks_total)
    kb.close()


def test_embedding_cache_keeps_only_the_live_passages(tmp_path: Path) -> None:
    import sqlite3

    from ingest.store.kb_layout import EMBEDDING_CACHE_FILE

    settings = store_settings(tmp_path)
    docs = write_corpus(tmp_path / "docs", 3)
    _ingest(settings, [tmp_path / "docs"])
    docs[0].write_text("替换后的唯一一段文字。", encoding="utf-8")
    report = _ingest(settings, [tmp_path / "docs"])
    conn = sqlite3.connect(settings.kb_path / EMBEDDING_CACHE_FILE)
    cached = conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    conn.close()
    assert cached == len({c.text for c in assert_consistent(settings.kb_path).iter_chunks()}) == report.chunks_total


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    write_corpus(tmp_path / "docs", 2)
    report = _ingest(settings, [tmp_path / "docs"], dry_run=True)
    assert (report.dry_run, report.committed, report.files_added) == (True, False, 2) and report.chunks_added > 0
    assert read_current(settings.kb_path) is None and not generations_dir(settings.kb_path).exists()


def test_an_outgrown_flat_index_is_rebuilt_as_ann(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    settings.index.ann_threshold = 40
    write_corpus(tmp_path / "docs", 2)
    first = _ingest(settings, [tmp_path / "docs"])
    assert first.chunks_total < 40 and assert_consistent(settings.kb_path).manifest.index_type == "flat"
    write_corpus(tmp_path / "docs2", 20)
    _ingest(settings, [tmp_path / "docs", tmp_path / "docs2"])
    kb = assert_consistent(settings.kb_path)
    assert kb.manifest.n_chunks >= 40 and kb.manifest.index_type == "ivf"
    kb.close()


# --- end to end with the real embedder (slow) ---------------------------------------------------------------------

@pytest.mark.slow
def test_real_embedder_on_the_sample_corpus(tmp_path: Path, real_embedder, real_embedder_settings,
                                            packaged_models_dir: Path) -> None:
    from app.cli.ingest_cli import SAMPLE_CORPUS

    settings = store_settings(tmp_path)
    settings.chunking = Settings().chunking
    settings.embedder = real_embedder_settings
    settings.model_cache_dir = packaged_models_dir
    docs = tmp_path / "sample"
    shutil.copytree(SAMPLE_CORPUS, docs)
    shutil.copy(docs / "rag_notes.md", docs / "rag_notes_copy.md")
    report = run_ingest(settings, [docs], IngestOptions())  # the default embedder factory
    assert (report.files_added, report.files_duplicate, report.files_failed) == (6, 1, 0)
    assert report.passages_embedded == report.chunks_total > 20
    kb = assert_consistent(settings.kb_path)
    assert (kb.manifest.embedder, kb.manifest.dimension) == (real_embedder.name, real_embedder.dimension)
    assert {c.page for c in kb.iter_chunks() if c.source.endswith(".pdf")} >= {1, 2}

    def top(question: str, k: int = 3) -> list:
        _, ids = kb.index.search(real_embedder.encode_queries([question]), k)
        return kb.get_chunks(ids[0].tolist())

    hits = top("青鸾评测集里有多少道拒答题？")
    assert any("青鸾" in c.text for c in hits)
    assert any("Sparrow-3" in c.text for c in top("How many tickets was Sparrow-3 trained on?"))
    retrieved = [c.chunk_id for c in top("检索增强生成的切块与融合", 10)]
    assert len(retrieved) == len(set(retrieved))  # the duplicate file's content is stored once
    kb.close()

    again = run_ingest(settings, [docs], IngestOptions(), embedder_factory=lambda: real_embedder)
    assert (again.committed, again.files_skipped, again.passages_embedded) == (False, 6, 0)


def test_token_vectors_are_stored_for_the_live_passages_and_quantized_when_many(tmp_path: Path) -> None:
    from ingest.embedding.embedding_cache import passage_fingerprint
    from ingest.store.kb_layout import TOKEN_VECTORS_FILE
    from ingest.store.token_store import TokenVectorStore

    settings = store_settings(tmp_path)
    settings.index.token_pq_bytes = 8
    docs = write_corpus(tmp_path / "docs", 3)
    embedder = FakeEmbedder()
    _ingest(settings, [tmp_path / "docs"], embedder)
    path = settings.kb_path / TOKEN_VECTORS_FILE

    def stored() -> tuple[list[str], TokenVectorStore]:
        live = [c.text for c in assert_consistent(settings.kb_path).iter_chunks()]
        store = TokenVectorStore.open_readonly(path, passage_fingerprint(embedder.name, embedder.dimension,
                                                                         settings.embedder), embedder.dimension)
        assert store is not None
        return live, store

    live, store = stored()
    vectors = store.get_many(live)
    assert len(vectors) == len(set(live))
    assert store._current_codec().description == "SQfp16"  # type: ignore[union-attr]

    # A removed document's token vectors go with it; once the base holds enough tokens they are product-quantised.
    docs[0].unlink()
    settings.index.token_pq_train_tokens = 300
    write_corpus(tmp_path / "more", 8, tag="more")
    _ingest(settings, [tmp_path / "docs", tmp_path / "more"])
    live, store = stored()
    import sqlite3

    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT COUNT(*) FROM tokens").fetchone()[0]
    conn.close()
    assert store.missing(live) == [] and rows == len(set(live))
    assert store._current_codec().description == "PQ8"  # type: ignore[union-attr]


def test_a_base_without_token_vectors_gets_them_on_rebuild_without_new_vectors(tmp_path: Path) -> None:
    from ingest.store.kb_layout import TOKEN_VECTORS_FILE

    settings = store_settings(tmp_path)
    settings.index.store_token_vectors = False
    write_corpus(tmp_path / "docs", 2)
    first = _ingest(settings, [tmp_path / "docs"])
    assert not (settings.kb_path / TOKEN_VECTORS_FILE).exists()
    settings.index.store_token_vectors = True
    embedder = FakeEmbedder()
    rebuilt = _ingest(settings, [tmp_path / "docs"], embedder, rebuild=True)
    assert (embedder.passages, rebuilt.passages_embedded, rebuilt.passages_cached) == (first.chunks_total,
                                                                                      first.chunks_total, 0)
    assert (settings.kb_path / TOKEN_VECTORS_FILE).exists()
