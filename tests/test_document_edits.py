"""Deleting and re-indexing single documents as ordinary ingest generations (IngestOptions.remove / reload), and
the exclusion that keeps a deleted file out of later scans of its folder: real loaders, FAISS and BM25, a hashing
embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_fakes import assert_consistent, store_settings

from app.config import Settings
from ingest.pipeline.ingest_pipeline import DocumentNotFoundError, IngestOptions, run_ingest
from ingest.pipeline.ingest_report import IngestReport
from ingest.store.kb_lock import KnowledgeBaseLockedError, WriterLock
from ingest.testing.fake_embedder import FakeEmbedder
from ingest.testing.small_corpus import write_corpus


def _run(settings: Settings, paths: list[Path], embedder: FakeEmbedder | None = None, **options) -> IngestReport:
    embedder = embedder or FakeEmbedder()
    return run_ingest(settings, paths, IngestOptions(**options), embedder_factory=lambda: embedder)


def _paths(settings: Settings) -> list[str]:
    kb = assert_consistent(settings.kb_path)
    assert kb is not None
    try:
        return sorted(d.path for d in kb.documents())
    finally:
        kb.close()


def test_delete_commits_a_generation_without_the_document_and_its_chunks(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = sorted(str(p) for p in write_corpus(tmp_path / "docs", 3))
    first = _run(settings, [tmp_path / "docs"])
    embedder = FakeEmbedder()
    report = _run(settings, [], embedder, remove=[docs[0]])
    assert (report.committed, report.files_removed, report.documents_total) == (True, 1, 2)
    assert report.chunks_removed > 0 and report.chunks_total == first.chunks_total - report.chunks_removed
    assert embedder.passages == 0  # nothing embedded for a delete
    assert _paths(settings) == docs[1:]


def test_deleting_an_unknown_or_deleted_document_is_not_found_and_changes_nothing(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = sorted(str(p) for p in write_corpus(tmp_path / "docs", 2))
    _run(settings, [tmp_path / "docs"])
    deleted = _run(settings, [], remove=[docs[0]])
    with pytest.raises(DocumentNotFoundError, match="deleted already or never ingested"):
        _run(settings, [], remove=[docs[0]])  # the second tab
    assert _run(settings, [tmp_path / "docs"]).generation == deleted.generation


def test_deleting_the_last_document_leaves_an_empty_valid_base(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = [str(p) for p in write_corpus(tmp_path / "docs", 1)]
    _run(settings, [tmp_path / "docs"])
    report = _run(settings, [], remove=docs)
    assert (report.committed, report.documents_total, report.chunks_total) == (True, 0, 0)
    assert _paths(settings) == []
    # and documents can be added to it again (the file itself named: the exclusion is lifted)
    again = _run(settings, [Path(docs[0])])
    assert (again.files_added, again.documents_total) == (1, 1)


def test_a_deleted_file_stays_out_of_its_folder_until_named(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = sorted(str(p) for p in write_corpus(tmp_path / "docs", 3))
    _run(settings, [tmp_path / "docs"])
    _run(settings, [], remove=[docs[1]])
    rescan = _run(settings, [tmp_path / "docs"])
    assert (rescan.committed, rescan.files_excluded) == (False, [docs[1]])
    assert "left out (deleted from the base earlier" in rescan.summary()
    assert _paths(settings) == [docs[0], docs[2]]
    named = _run(settings, [Path(docs[1])])
    assert named.files_added == 1 and _paths(settings) == docs
    assert _run(settings, [tmp_path / "docs"]).files_excluded == []  # forgotten once added back


def test_delete_is_refused_while_another_ingest_holds_the_lock(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    docs = [str(p) for p in write_corpus(tmp_path / "docs", 2)]
    _run(settings, [tmp_path / "docs"])
    import threading

    holding, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        with WriterLock(settings.kb_path):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        holding.wait(10)
        with pytest.raises(KnowledgeBaseLockedError, match="another ingest is running"):
            _run(settings, [], remove=[docs[0]])
    finally:
        release.set()
        thread.join()
    assert len(_paths(settings)) == 2


def test_reload_chunks_an_unchanged_document_again_with_the_current_settings(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    folder = tmp_path / "docs"
    folder.mkdir()
    text = "\n\n".join(f"Paragraph {i} of the handbook says the value {i} is kept for audit reasons." for i in range(40))
    (folder / "a.md").write_text(text, encoding="utf-8")
    (folder / "copy.md").write_text(text, encoding="utf-8")  # same content under another path
    first = _run(settings, [folder])
    smaller = settings.model_copy(update={"chunking": settings.chunking.model_copy(
        update={"chunk_size": settings.chunking.chunk_size // 2, "chunk_overlap": 0})})
    same = _run(smaller, [folder])
    assert not same.committed  # an ordinary run keeps the old chunks
    report = _run(smaller, [], reload=[str(folder / "a.md")])
    assert (report.committed, report.files_updated, report.documents_total) == (True, 1, 2)
    assert report.chunks_total > first.chunks_total and report.chunks_removed == first.chunks_total
    kb = assert_consistent(settings.kb_path)
    assert kb is not None
    try:
        counts = {Path(d.path).name: d.n_chunks for d in kb.documents()}
        assert counts == {"a.md": report.chunks_total, "copy.md": report.chunks_total}
    finally:
        kb.close()


def test_reloading_an_unknown_document_is_not_found(tmp_path: Path) -> None:
    settings = store_settings(tmp_path)
    write_corpus(tmp_path / "docs", 1)
    _run(settings, [tmp_path / "docs"])
    with pytest.raises(DocumentNotFoundError):
        _run(settings, [], reload=[str(tmp_path / "docs" / "nope.md")])
