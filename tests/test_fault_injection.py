"""Nothing lost, ever: damaged files of a base, a damaged CURRENT, a missing or unreadable folder, racing uploads and
a full disk each end in an automatic recovery or one clear line, and every committed document survives.

The whole matrix (every file × every fault × every face) is ``python -m bench.fault_matrix``; here a representative
part of it runs (in a subprocess, which drops root's file-permission override so chmod 000 means something), plus
the cases that need their own set-up."""

from __future__ import annotations

import ctypes
import html
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from store_fakes import store_settings

from app.cli.ingest_cli import main as ingest_main
from app.uploads.upload_ingest import ingest_uploads
from ingest.pipeline.ingest_pipeline import (
    IngestOptions,
    KnowledgeBaseWriteError,
    run_ingest,
)
from ingest.store.kb_layout import committed_generations, generation_paths, read_current
from ingest.store.kb_lock import KnowledgeBaseLockedError
from ingest.store.knowledge_base import KnowledgeBase, KnowledgeBaseError
from ingest.testing.fake_embedder import FakeEmbedder
from ingest.testing.small_corpus import write_corpus

REPO = Path(__file__).resolve().parent.parent


def _documents(kb_dir: Path) -> dict[str, list[str]]:
    with KnowledgeBase.open(kb_dir) as kb:
        texts: dict[str, list[str]] = {}
        for chunk in kb.iter_chunks():
            texts.setdefault(chunk.doc_id, []).append(chunk.text)
        return {doc.path: texts[doc.content_hash] for doc in kb.documents()}


def _ingest(settings, paths, **options):
    return run_ingest(settings, paths, IngestOptions(**options), embedder_factory=FakeEmbedder)


@pytest.fixture
def base(tmp_path):
    """A base of two generations over ``docs`` (4 files + 2 in a sub-folder); returns (settings, docs, documents)."""
    settings = store_settings(tmp_path)
    docs = tmp_path / "docs"
    write_corpus(docs, 4)
    _ingest(settings, [docs])
    write_corpus(docs / "more", 2, tag="增补")
    _ingest(settings, [docs])
    return settings, docs, _documents(settings.kb_path)


def test_the_fault_matrix_recovers_or_refuses_every_cell_and_loses_nothing():
    files = "CURRENT,manifest.json,catalog.sqlite3,index.faiss,keyword_index.json,token_vectors.sqlite3," \
            "embedding_cache.sqlite3"
    command = [sys.executable, "-m", "bench.fault_matrix", "--json", "--quiet", "--files", files,
               "--faults", "deleted,garbage_header,corrupted_middle,permissions"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    counts = result["counts"]
    print("\nfault matrix (subset):", counts)
    failed = [c for c in result["cells"] if c["outcome"] == "failed" or c["lost"] or c["generation_deleted"]]
    assert not failed, failed[:5]
    assert counts["cells"] == 7 * 4 * 5 and counts["documents_lost"] == counts["generations_deleted"] == 0
    assert counts["recovered"] >= 20 and counts["refused"] >= 20  # both paths are really taken
    by_cell = {(c["file"], c["fault"], c["face"]): c for c in result["cells"]}
    # A deleted CURRENT is recovered to the newest complete generation, by readers and by the writer alike.
    assert by_cell[("CURRENT", "deleted", "ingest_nochange")]["outcome"] == "recovered"
    assert "using gen-000002" in by_cell[("CURRENT", "deleted", "retrieval")]["message"]
    # A permission problem is called one, not damage.
    cell = by_cell[("generations/gen-000002/catalog.sqlite3", "permissions", "retrieval")]
    assert cell["outcome"] == "refused" and "permission denied" in cell["message"]
    assert "damaged" not in cell["message"]
    assert done.returncode == 0


def test_a_deleted_current_is_recovered_by_the_next_ingest_and_nothing_is_deleted(base):
    settings, docs, documents = base
    kb_dir = settings.kb_path
    (kb_dir / "CURRENT").unlink()
    before = committed_generations(kb_dir)
    report = _ingest(settings, [docs])
    assert not report.failures and report.documents_total == len(documents)
    assert read_current(kb_dir) == before[0]
    assert set(before) <= set(committed_generations(kb_dir))  # no committed generation was removed
    assert _documents(kb_dir) == documents


def test_a_damaged_current_with_no_complete_generation_stops_without_deleting(base, capsys):
    settings, docs, documents = base
    kb_dir = settings.kb_path
    (kb_dir / "CURRENT").write_bytes(b"\xff\xfe garbage")
    for name in committed_generations(kb_dir):
        (generation_paths(kb_dir, name).manifest).write_text("{", encoding="utf-8")
    before = sorted(p.relative_to(kb_dir) for p in kb_dir.rglob("*"))
    code = ingest_main(["--quiet", "--kb", str(kb_dir), str(docs)], embedder_factory=FakeEmbedder)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no generation" in err[0] and "nothing was deleted" in err[0]
    assert sorted(p.relative_to(kb_dir) for p in kb_dir.rglob("*") if p.name != ".lock") == \
        [p for p in before if p.name != ".lock"]


def test_a_missing_folder_removes_nothing_and_is_named(base):
    settings, docs, documents = base
    unplugged = docs.with_name("unplugged")
    docs.rename(unplugged)  # the drive is gone
    report = _ingest(settings, [docs])
    assert [f.path for f in report.failures] == [str(docs)]
    assert "no such file or folder" in report.failures[0].reason
    assert f"{len(documents)} document(s) ingested from it are kept" in report.failures[0].reason
    assert report.files_removed == 0 and _documents(settings.kb_path) == documents
    # Files gone from a folder that is present are still removed.
    unplugged.rename(docs)
    (docs / "doc_000.txt").unlink()
    assert _ingest(settings, [docs]).files_removed == 1


def _drop_root_file_access() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_unreadable_folder_removes_nothing_and_is_named(base, tmp_path):
    settings, docs, documents = base
    (docs / "more").chmod(0)
    try:
        command = [sys.executable, str(REPO / "tests" / "ingest_with_fake_embedder.py"), "--",
                   "--quiet", "--kb", str(settings.kb_path), str(docs)]
        env = {**os.environ, "PYTHONPATH": str(REPO), "DOCQA_HOME": str(tmp_path / "home"),
               "DOCQA_CHUNKING__CHUNK_SIZE": "80", "DOCQA_CHUNKING__CHUNK_OVERLAP": "10",
               "DOCQA_CHUNKING__MIN_CHUNK_CHARS": "10"}
        preexec = _drop_root_file_access if os.geteuid() == 0 else None
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, preexec_fn=preexec)
    finally:
        (docs / "more").chmod(0o755)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert str(docs / "more") in lines[0] and "Permission denied" in lines[0] and "2 document(s)" in lines[0]
    assert _documents(settings.kb_path) == documents


def test_an_ingest_with_no_change_writes_a_missing_keyword_index_back(base):
    settings, docs, documents = base
    live = generation_paths(settings.kb_path, read_current(settings.kb_path))
    shutil.rmtree(live.keyword_dir)
    with KnowledgeBase.open(settings.kb_path) as kb:
        assert len(kb.notices) == 1 and "rebuilt from the catalog" in kb.notices[0]
    report = _ingest(settings, [docs])
    assert report.committed and report.files_added == report.files_updated == 0
    with KnowledgeBase.open(settings.kb_path) as kb:
        assert kb.notices == [] and len(kb.keyword_index) == kb.manifest.n_chunks
    assert _documents(settings.kb_path) == documents


@pytest.mark.parametrize("store", ["embedding_cache.sqlite3", "token_vectors.sqlite3"])
def test_a_damaged_cache_is_started_over_with_one_line(base, store, caplog):
    settings, docs, documents = base
    path = settings.kb_path / store
    data = path.read_bytes()
    path.write_bytes(data[:100] + os.urandom(len(data) - 100))
    write_corpus(docs / "new", 1, tag="新增")
    report = _ingest(settings, [docs])
    assert report.committed and not report.failures
    started_over = [r.getMessage() for r in caplog.records if "started it over" in r.getMessage()]
    assert len(started_over) == 1 and store in started_over[0]
    after = _documents(settings.kb_path)
    assert all(after[path] == texts for path, texts in documents.items()) and len(after) == len(documents) + 1


def test_racing_uploads_of_one_name_never_delete_each_others_file(tmp_path):
    settings = store_settings(tmp_path)
    release = tmp_path / "release"
    first_done: list = []

    def first() -> None:
        first_done.append(ingest_uploads([("报告.md", "第一版：星河数据库监听 7341 端口。".encode())], settings,
                                         embedder=FakeEmbedder(hold_until=release)))

    thread = threading.Thread(target=first)
    thread.start()
    upload = settings.upload_path / "报告.md"
    for _ in range(200):  # wait until the first upload is saved and embedding (holding the lock)
        if upload.exists():
            break
        threading.Event().wait(0.05)
    with pytest.raises(KnowledgeBaseLockedError):
        ingest_uploads([("报告.md", "第二版：端口改为 8000。".encode())], settings, embedder=FakeEmbedder())
    release.touch()
    thread.join(60)
    assert first_done and first_done[0].ingested == ["报告.md"]
    assert upload.read_text(encoding="utf-8").startswith("第一版")
    assert [p.name for p in settings.upload_path.iterdir()] == ["报告.md"]  # no stray backups
    texts = [t for ts in _documents(settings.kb_path).values() for t in ts]
    assert any("第一版" in t for t in texts)
    # A failing new version puts back exactly its own predecessor.
    outcome = ingest_uploads([("报告.md", b"\x00\x01\x02binary\x00" * 50)], settings, embedder=FakeEmbedder())
    assert outcome.failures and upload.read_text(encoding="utf-8").startswith("第一版")
    assert [p.name for p in settings.upload_path.iterdir()] == ["报告.md"]


@pytest.fixture
def tmpfs(tmp_path):
    mount = tmp_path / "small_disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_named_as_such_and_loses_nothing(tmp_path, tmpfs, capsys):
    settings = store_settings(tmp_path)
    settings.kb_dir = tmpfs / "kb"
    docs = tmp_path / "docs"
    write_corpus(docs, 4)
    _ingest(settings, [docs])
    documents = _documents(settings.kb_path)
    filler = tmpfs / "filler"
    with open(filler, "wb") as fh:  # fill the disk to the last block
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    write_corpus(docs / "new", 3, tag="新增")
    with pytest.raises(KnowledgeBaseWriteError, match="^disk full: "):
        _ingest(settings, [docs])
    config = tmp_path / "docqa.toml"
    config.write_text("[chunking]\nchunk_size = 80\nchunk_overlap = 10\nmin_chunk_chars = 10\n", encoding="utf-8")
    code = ingest_main(["--quiet", "--kb", str(settings.kb_path), "--config", str(config), str(docs)],
                       embedder_factory=FakeEmbedder)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: disk full: "), err
    assert _documents(settings.kb_path) == documents
    filler.unlink()  # space again: the next run completes the work
    report = _ingest(settings, [docs])
    assert report.committed and report.documents_total == len(documents) + 3


def test_the_page_shows_the_same_message_as_the_cli(base, monkeypatch, capsys):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from app.cli.retrieval_cli import main as retrieval_main
    settings, docs, documents = base
    live = generation_paths(settings.kb_path, read_current(settings.kb_path))
    data = live.catalog.read_bytes()
    live.catalog.write_bytes(data[: len(data) // 2])
    monkeypatch.setattr("app.wiring.load_embedder", lambda s: FakeEmbedder())
    assert retrieval_main(["量化", "--kb", str(settings.kb_path)]) == 2
    cli_line = capsys.readouterr().err.strip()
    assert cli_line.startswith("error: knowledge base") and "catalog.sqlite3: damaged" in cli_line
    monkeypatch.setenv("DOCQA_HOME", str(tmp_home := settings.kb_path.parent / "page_home"))
    monkeypatch.setenv("DOCQA_KB_DIR", str(settings.kb_path))
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app" / "web" / "chat_page.py"), default_timeout=60).run()
    assert not at.exception and tmp_home
    message = cli_line.removeprefix("error: ")
    shown = [html.unescape(e.value).replace("\u2060", "") for e in [*at.error, *at.sidebar.error, *at.info]]
    assert any(message in text for text in shown), shown
    assert any(message in html.unescape(e.value).replace("\u2060", "") for e in at.sidebar.error)
    assert not any("知识库还是空的" in text for text in shown)  # not called "empty"
    st.cache_resource.clear()


def test_a_damaged_live_generation_is_refused_by_the_writer_and_the_old_files_stay(base):
    settings, docs, documents = base
    live = generation_paths(settings.kb_path, read_current(settings.kb_path))
    data = live.index.read_bytes()
    live.index.write_bytes(data[:-100] + bytes(100))  # damage the vectors' tail: loadable, but wrong
    write_corpus(docs / "new", 1, tag="新增")
    with pytest.raises(KnowledgeBaseError, match="index.faiss: damaged"):
        _ingest(settings, [docs])
    live.index.write_bytes(data)
    assert _documents(settings.kb_path) == documents


def test_every_face_applies_the_shared_question_bound(base, monkeypatch, capsys):
    from app.cli.ask import main as ask_main
    from app.cli.retrieval_cli import main as retrieval_main
    from app.wiring import build_retriever
    from retrieval.question_check import QuestionError
    settings, _, _ = base
    monkeypatch.setattr("app.wiring.load_embedder", lambda s: FakeEmbedder())
    monkeypatch.setattr("app.wiring.build_generator", lambda s: pytest.fail("the LLM must not load"))
    huge = "量化" * 50_000
    limit = str(settings.limits.max_question_chars)
    for face in (retrieval_main, ask_main):
        assert face([huge, "--kb", str(settings.kb_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("question rejected:") and limit in err[0]
    retriever = build_retriever(settings, FakeEmbedder())
    with pytest.raises(QuestionError):
        retriever.retrieve(huge)


def test_an_unwritable_base_is_named_as_a_permission_problem(base, tmp_path):
    settings, docs, documents = base
    write_corpus(docs / "new", 1, tag="新增")
    folders = [settings.kb_path, settings.kb_path / "generations"]
    for folder in folders:
        folder.chmod(0o555)
    try:
        command = [sys.executable, str(REPO / "tests" / "ingest_with_fake_embedder.py"), "--",
                   "--quiet", "--kb", str(settings.kb_path), str(docs)]
        env = {**os.environ, "PYTHONPATH": str(REPO), "DOCQA_HOME": str(tmp_path / "home")}
        preexec = _drop_root_file_access if os.geteuid() == 0 else None
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, preexec_fn=preexec)
    finally:
        for folder in folders:
            folder.chmod(0o755)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: permission denied") and "damaged" not in lines[0]
    assert _documents(settings.kb_path) == documents
