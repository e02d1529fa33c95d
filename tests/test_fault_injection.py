"""Nothing lost, ever: damaged files of a base, a damaged CURRENT, a missing or unreadable folder, racing uploads and
a full disk each end in an automatic recovery or one clear line, and every committed document survives.

The whole matrix (every file × every fault × every face) is ``python -m bench.fault_matrix``; here a representative
part of it runs (in a subprocess, which drops root's file-permission override so chmod 000 means something), plus
the cases that need their own set-up."""

from __future__ import annotations

import contextlib
import ctypes
import html
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from app_fakes import ingest_with_hash_embedder
from app_fakes import write_corpus as write_small_corpus
from page_server import running_page
from app.server.process_harness import (
    ASKED,
    MULTIPART_HEADERS,
    attack_headers,
    hostile_requests,
    multipart_stream,
    start_fake_server,
    upload_memory,
)
from store_fakes import store_settings

from app.cli.ingest_cli import main as ingest_main
from app.config import Settings
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
               "--faults", "deleted,garbage_header,corrupted_middle,permissions,older_generation,folder",
               "--scenarios", "link_out_of_folder,hostile_file_name"]  # the server's rows have tests of their own
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    counts = result["counts"]
    print("\nfault matrix (subset):", counts)
    failed = [c for c in result["cells"] if c["outcome"] == "failed" or c["lost"] or c["generation_deleted"]]
    assert not failed, failed[:5]
    # 7 files x 4 faults x 5 faces, the pointer's own 2 faults (CURRENT only) x 5 faces, 2 scenarios x 4 faces
    assert counts["cells"] == 7 * 4 * 5 + 2 * 5 + 2 * 4
    assert counts["documents_lost"] == counts["generations_deleted"] == 0
    assert counts["recovered"] >= 20 and counts["refused"] >= 20  # both paths are really taken
    by_cell = {(c["file"], c["fault"], c["face"]): c for c in result["cells"]}
    # A deleted CURRENT is recovered to the newest complete generation, by readers and by the writer alike.
    assert by_cell[("CURRENT", "deleted", "ingest_nochange")]["outcome"] == "recovered"
    # CURRENT set back to gen-000001: the newer generation is kept and used (before, the ingest deleted it).
    assert "using gen-000002" in by_cell[("CURRENT", "older_generation", "ingest_nochange")]["message"]
    assert by_cell[("CURRENT", "folder", "ingest_change")]["outcome"] == "refused"
    # The scenario rows: links out of the folder are named and left out; a hostile name is never printed raw.
    assert "symbolic link" in by_cell[("scenario: link_out_of_folder", "-", "ingest_change")]["message"]
    assert "\\u202e" in by_cell[("scenario: hostile_file_name", "-", "ingest_change")]["message"]
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


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name.startswith("ingest")]


def test_current_set_back_to_an_older_generation_keeps_the_newer_one(base, capsys, caplog):
    """A restored backup, a sync tool or a hand edit points CURRENT at gen-000001: before, the next ingest deleted
    gen-000002 as 'left by an interrupted ingest' and its documents were gone."""
    settings, docs, documents = base
    kb_dir = settings.kb_path
    assert committed_generations(kb_dir) == ["gen-000002", "gen-000001"]
    (kb_dir / "CURRENT").write_text("gen-000001\n", encoding="utf-8")
    with KnowledgeBase.open(kb_dir) as kb:  # readers use the newest complete generation and say why
        assert kb.manifest.generation == "gen-000002" and len(kb.notices) == 1
        assert "names gen-000001, an older generation than gen-000002" in kb.notices[0]
        assert "--use-generation gen-000001" in kb.notices[0]
    code = ingest_main(["--quiet", "--kb", str(kb_dir), str(docs)], embedder_factory=FakeEmbedder)
    err = _warnings(caplog)
    assert code == 0 and len(err) == 1 and "CURRENT now names it" in err[0], err
    assert read_current(kb_dir) == "gen-000002" and committed_generations(kb_dir) == ["gen-000002", "gen-000001"]
    assert _documents(kb_dir) == documents
    # The user's choice: gen-000001's content made live again, as a new generation; nothing is deleted for it.
    code = ingest_main(["--quiet", "--kb", str(kb_dir), "--use-generation", "gen-000001"])
    assert code == 0, capsys.readouterr().err
    assert read_current(kb_dir) == "gen-000003"
    assert set(_documents(kb_dir)) == {p for p in documents if "/more/" not in p}
    assert {"gen-000001", "gen-000002"} <= set(committed_generations(kb_dir))
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.notices == []
    assert ingest_main(["--quiet", "--kb", str(kb_dir), "--use-generation", "gen-000009"]) == 2
    assert "no committed generation 'gen-000009'" in capsys.readouterr().err


def test_a_commit_cut_off_before_its_flip_is_still_cleaned_up(base, caplog):
    """The other reason a generation is newer than CURRENT: a writer killed between renaming its folder and
    flipping CURRENT. Its announced next CURRENT tells the two apart, so that one is removed (it never was live)."""
    settings, docs, documents = base
    kb_dir = settings.kb_path
    (kb_dir / "CURRENT").write_text("gen-000001\n", encoding="utf-8")
    (kb_dir / "CURRENT.tmp-4242").write_text("gen-000002\n", encoding="utf-8")
    with KnowledgeBase.open(kb_dir) as kb:  # a commit in progress: readers keep to CURRENT, with nothing to say
        assert kb.manifest.generation == "gen-000001" and kb.notices == []
    caplog.set_level(logging.INFO, logger="ingest")
    report = _ingest(settings, [docs])  # removes it, then does the work again from gen-000001
    removed = [r.getMessage() for r in caplog.records if "left by an interrupted ingest" in r.getMessage()]
    assert sorted(removed) == ["removed CURRENT.tmp-4242 left by an interrupted ingest",
                               "removed gen-000002 left by an interrupted ingest"]
    assert report.committed and report.files_added == 2 and not (kb_dir / "CURRENT.tmp-4242").exists()
    assert _documents(kb_dir) == documents


def test_current_naming_an_unknown_generation_deletes_nothing(base, caplog):
    settings, docs, documents = base
    kb_dir = settings.kb_path
    (kb_dir / "CURRENT").write_text("gen-000077\n", encoding="utf-8")
    assert ingest_main(["--quiet", "--kb", str(kb_dir), str(docs)], embedder_factory=FakeEmbedder) == 0
    err = " ".join(_warnings(caplog))
    assert "names generation 'gen-000077', which does not exist; using gen-000002" in err
    assert committed_generations(kb_dir) == ["gen-000002", "gen-000001"] and _documents(kb_dir) == documents


@pytest.mark.parametrize("kind", ["folder", "link"])
def test_a_folder_or_a_link_in_place_of_current_gets_one_line_and_a_fix(base, kind, capsys, caplog):
    settings, docs, documents = base
    kb_dir = settings.kb_path
    current = kb_dir / "CURRENT"
    current.unlink()
    if kind == "folder":
        current.mkdir()
        (current / "something").write_text("kept", encoding="utf-8")
    else:
        current.symlink_to("/etc/hostname")
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.manifest.generation == "gen-000002" and "not the pointer file docqa writes" in kb.notices[0]
    code = ingest_main(["--quiet", "--kb", str(kb_dir), str(docs)], embedder_factory=FakeEmbedder)
    err = capsys.readouterr().err.strip().splitlines() + _warnings(caplog)
    assert len(err) == 1 and "Errno" not in err[0], err
    if kind == "folder":  # it cannot be replaced by a rename: the user moves it (nothing of it is deleted)
        assert code == 2 and err[0].startswith("error: ") and "move it out of the way" in err[0]
        assert (current / "something").read_text(encoding="utf-8") == "kept"
    else:  # the link itself is replaced (what it pointed to is left alone)
        assert code == 0 and "CURRENT now names it" in err[0]
        assert not current.is_symlink() and read_current(kb_dir) == "gen-000002"
    assert committed_generations(kb_dir) == ["gen-000002", "gen-000001"] and _documents(kb_dir) == documents


def test_links_out_of_the_folder_are_skipped_with_a_line_unless_asked(base, tmp_path, caplog):
    settings, docs, documents = base
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.md").write_text("不该进入知识库的私人笔记：保险箱密码在抽屉里。", encoding="utf-8")
    (docs / "passwd.txt").symlink_to("/etc/passwd")
    (docs / "elsewhere").symlink_to(outside)
    (docs / "inside.txt").symlink_to(docs / "doc_000.txt")  # a link that stays inside is an ordinary file
    args = ["--quiet", "--kb", str(settings.kb_path), str(docs)]
    assert ingest_main(args, embedder_factory=FakeEmbedder) == 1
    err = _warnings(caplog)
    assert sorted(err) == [f"skipped {docs / 'elsewhere'}: a symbolic link to {outside}, outside the folder being "
                           "ingested: not followed (--follow-links follows it)",
                           f"skipped {docs / 'passwd.txt'}: a symbolic link to /etc/passwd, outside the folder "
                           "being ingested: not followed (--follow-links follows it)"]
    stored = _documents(settings.kb_path)
    assert str(docs / "inside.txt") in stored and not any("passwd" in p or "elsewhere" in p for p in stored)
    assert not any("root:" in t or "保险箱" in t for texts in stored.values() for t in texts)
    # Asked to follow: both come in; turned off again, they are kept (a link left out removes nothing) and named.
    assert ingest_main([*args, "--follow-links"], embedder_factory=FakeEmbedder) == 0
    followed = _documents(settings.kb_path)
    assert {str(docs / "passwd.txt"), str(docs / "elsewhere" / "secret.md")} <= set(followed)
    assert ingest_main(args, embedder_factory=FakeEmbedder) == 1
    assert _documents(settings.kb_path) == followed
    assert all(followed[p] == texts for p, texts in documents.items())


def test_a_link_loop_between_folders_ends_when_following_links(base, tmp_path):
    settings, docs, _ = base
    outside = tmp_path / "loop"
    outside.mkdir()
    (outside / "back").symlink_to(docs)
    (outside / "note.md").write_text("循环链接另一侧的笔记，内容完整。", encoding="utf-8")
    (docs / "loop").symlink_to(outside)
    report = _ingest(settings, [docs], follow_links=True)
    assert not report.failures and str(docs / "loop" / "note.md") in _documents(settings.kb_path)


# --- web pages against the loopback server (a real server process) ------------------------------------------------

_MINE = "# 我的笔记\n\n保险柜的备用钥匙放在书架第三层。\n".encode()
_PLANTED = "# 我的笔记\n\n备用钥匙已经交给了楼下的陌生人。\n".encode()


@pytest.fixture(scope="module")
def loopback_server(tmp_path_factory):
    """A server over a small base plus one upload of the user's, answering also to the configured name docqa.lan."""
    tmp = tmp_path_factory.mktemp("loopback")
    home = tmp / "home"
    ingest_with_hash_embedder(Settings(data_dir=home), [write_small_corpus(home / "docs")])
    server = start_fake_server({"DOCQA_HOME": str(home), "DOCQA_CONFIG": "",
                                "DOCQA_SERVER__ALLOWED_HOSTS": '["docqa.lan"]'}, tmp / "server.log")
    server.home = home
    try:
        saved = httpx.post(server.base_url + "/v1/kb/documents", headers=ASKED, timeout=60,
                           files=[("files", ("我的笔记.md", _MINE, "text/markdown"))])
        assert saved.json()["files"][0]["status"] == "ingested", saved.text
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text(encoding="utf-8", errors="replace")


def _state(server) -> tuple[dict[str, str], bytes]:
    """The documents the server lists (name -> id) and the bytes of the user's upload."""
    listed = httpx.get(server.base_url + "/v1/kb/documents", timeout=30).json()["documents"]
    return {d["name"]: d["id"] for d in listed}, (server.home / "uploads" / "我的笔记.md").read_bytes()


@pytest.mark.parametrize("attack", ["dns_rebinding", "cross_origin", "origin_null", "cross_site_fetch"])
def test_a_web_page_can_neither_read_nor_change_the_base(loopback_server, attack):
    server = loopback_server
    before = _state(server)
    headers = attack_headers(attack, server.port)
    for what, response in hostile_requests(server.base_url, before[0]["我的笔记.md"], headers,
                                           ("我的笔记.md", _PLANTED)):
        assert response.status_code == 403, (what, response.status_code, response.text)
        error = response.json()["error"]
        assert error["code"] in ("host_not_allowed", "origin_not_allowed"), (what, error)
        assert "我的笔记" not in response.text and "星河" not in response.text, what
    assert _state(server) == before  # nothing planted, replaced, re-scanned or deleted


def test_uploads_and_rescans_a_page_could_send_on_its_own_are_refused(loopback_server):
    """Browsers that send no Origin: a 'simple' request (a form's content type, no custom header) is refused."""
    server = loopback_server
    before = _state(server)
    plant = [("files", ("我的笔记.md", _PLANTED, "text/markdown"))]
    for response in (httpx.post(server.base_url + "/v1/kb/documents", files=plant, timeout=30),
                     httpx.post(server.base_url + "/v1/kb/rescan", content=b"", timeout=30),
                     httpx.post(server.base_url + "/v1/kb/rescan", content=b"a=1", timeout=30,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})):
        assert response.status_code == 403 and response.json()["error"]["code"] == "simple_request_refused"
        assert "X-Requested-With" in response.json()["error"]["message"]
    assert _state(server) == before
    # What a real client sends passes: JSON, or the header a page cannot add on its own.
    assert httpx.post(server.base_url + "/v1/kb/rescan", json={}, timeout=60).status_code == 200
    assert httpx.post(server.base_url + "/v1/kb/rescan", headers=ASKED, timeout=60).status_code == 200
    assert _state(server) == before


def test_local_front_ends_and_configured_names_are_served(loopback_server):
    server = loopback_server
    base = server.base_url
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "docqa.lan", f"DOCQA.lan:{server.port}",
                 "app.localhost"):
        assert httpx.get(base + "/v1/kb/documents", headers={"Host": host}, timeout=30).status_code == 200, host
    local = {"Origin": "http://localhost:3000"}
    listed = httpx.get(base + "/v1/kb/documents", headers=local, timeout=30)
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == "http://localhost:3000"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = httpx.options(base + "/v1/chat/completions", headers={**local, **preflight}, timeout=30)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    refused = httpx.options(base + "/v1/chat/completions", timeout=30,
                            headers={"Origin": "https://evil.example", **preflight})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers


def _page_websocket(port: int, host: str, origin: str) -> str:
    """Open the chat page's WebSocket as a browser on ``origin`` would, reaching 127.0.0.1 under the name ``host``
    (DNS rebinding points a foreign name at this machine); 'open' or why it was refused."""
    import socket

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        with connect(f"ws://{host}:{port}/_stcore/stream", sock=sock, origin=origin, open_timeout=10):
            return "open"
    except InvalidStatus as exc:
        return f"refused {exc.response.status_code}"


def test_the_chat_pages_own_server_refuses_rebinding_and_foreign_pages(tmp_path):
    """.streamlit/config.toml: Streamlit checks the Host and the Origin of the WebSocket that carries questions,
    answers and uploads; without allowedHosts it accepts any Host."""
    env = {**os.environ, "DOCQA_HOME": str(tmp_path / "home"), "DOCQA_CONFIG": ""}
    # No --server.address: the project's config file decides it (127.0.0.1).
    with running_page(env, tmp_path / "streamlit.log") as port:
        assert _page_websocket(port, "127.0.0.1", f"http://127.0.0.1:{port}") == "open"
        assert _page_websocket(port, "localhost", f"http://localhost:{port}") == "open"
        assert _page_websocket(port, "evil.example", f"http://evil.example:{port}").startswith("refused 403")
        assert _page_websocket(port, "127.0.0.1", "https://evil.example").startswith("refused 403")
        # Listening on loopback only (the config file's address), not on every interface.
        if shutil.which("ss"):
            listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
            local = [line.split()[3] for line in listening.splitlines() if line.strip()]
            assert local == [f"127.0.0.1:{port}"], listening


# --- uploads: streamed to disk, bounded, and never half-confirmed --------------------------------------------------

@pytest.mark.parametrize("accepted", [False, True], ids=["over_the_file_limit", "saved_then_refused_by_size"])
def test_a_95_mb_upload_is_streamed_to_disk_not_held_in_memory(tmp_path, accepted):
    """Before: the server read each upload whole into memory (+92 MB of RSS for a 95 MB file) before checking the
    per-file limit. Now it is written to disk as it arrives, under the limit."""
    home = tmp_path / "home"
    ingest_with_hash_embedder(Settings(data_dir=home), [write_small_corpus(home / "docs")])
    # Accepted: a 100 MB upload limit lets it be saved; the ingest then refuses it by its size (limits.max_file_mb)
    # without reading it, so what is measured is the upload path, not a loader.
    limits = {"DOCQA_LIMITS__MAX_UPLOAD_MB": "100", "DOCQA_LIMITS__MAX_FILE_MB": "90"} if accepted else {}
    server = start_fake_server({"DOCQA_HOME": str(home), "DOCQA_CONFIG": "", **limits}, tmp_path / "server.log")
    try:
        response, mb = upload_memory(server, 95 * 2**20)
        print(f"\n95 MB upload ({'saved, then refused by size' if accepted else 'over the 50 MB file limit'}): "
              f"server RSS {mb['rss_before']:.1f} MB before, {mb['rss_after']:.1f} MB after, highest sample "
              f"{mb['highest']:.1f} MB (+{mb['highest'] - mb['rss_before']:.1f} MB); peak RSS (VmHWM) "
              f"{mb['peak_before']:.1f} → {mb['peak_after']:.1f} MB")
        assert response.status_code == 200, response.text
        result = response.json()["files"][0]
        assert result["status"] == "failed"
        assert ("max_file_mb" if accepted else "max_upload_mb") in result["reason"], result
        assert mb["highest"] - mb["rss_before"] < 24 and mb["peak_after"] - mb["peak_before"] < 24
        uploads = home / "uploads"
        assert not [p for p in uploads.rglob("*") if p.is_file()], list(uploads.rglob("*"))  # nothing left behind
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text(encoding="utf-8", errors="replace")


def test_uploads_beyond_the_concurrent_bound_are_told_to_retry(tmp_path):
    home = tmp_path / "home"
    ingest_with_hash_embedder(Settings(data_dir=home), [write_small_corpus(home / "docs")])
    server = start_fake_server({"DOCQA_HOME": str(home), "DOCQA_CONFIG": "",
                                "DOCQA_SERVER__MAX_CONCURRENT_UPLOADS": "1"}, tmp_path / "server.log")
    try:
        slow: list[httpx.Response] = []
        first = threading.Thread(target=lambda: slow.append(httpx.post(
            server.base_url + "/v1/kb/documents", headers=MULTIPART_HEADERS, timeout=120,
            content=multipart_stream("慢.txt", 3 * 2**20, pause=0.7))))
        first.start()
        time.sleep(0.8)  # the first body is arriving
        second = httpx.post(server.base_url + "/v1/kb/documents", headers=ASKED, timeout=30,
                            files=[("files", ("快.md", "# 快\n\n第二个上传。\n".encode(), "text/markdown"))])
        assert second.status_code == 429 and second.headers["retry-after"]
        assert second.json()["error"]["code"] == "too_many_uploads"
        first.join()
        assert slow[0].status_code == 200 and slow[0].json()["files"][0]["status"] == "ingested", slow[0].text
        again = httpx.post(server.base_url + "/v1/kb/documents", headers=ASKED, timeout=30,
                           files=[("files", ("快.md", "# 快\n\n第二个上传。\n".encode(), "text/markdown"))])
        assert again.status_code == 200 and again.json()["files"][0]["status"] == "ingested"
    finally:
        server.stop()


def test_an_upload_cut_off_by_a_kill_is_not_ingested_by_the_next_rescan_unless_asked(tmp_path):
    home = tmp_path / "home"
    ingest_with_hash_embedder(Settings(data_dir=home), [write_small_corpus(home / "docs")])
    env = {"DOCQA_HOME": str(home), "DOCQA_CONFIG": ""}
    uploads = home / "uploads"
    first_version = "# 报告\n\n第一版：熔岩协议的握手超时是 42 秒。\n".encode()
    second_version = "# 报告\n\n第二版：熔岩协议的握手超时改为 7 秒。\n".encode()

    def texts(base: str) -> str:
        hits = httpx.post(base + "/v1/kb/retrieve", json={"query": "熔岩协议的握手超时"}, timeout=30).json()
        return " ".join(p["chunk"]["text"] for p in hits["passages"])

    server = start_fake_server(env, tmp_path / "server1.log", "--embed-delay", "3")
    try:
        saved = httpx.post(server.base_url + "/v1/kb/documents", headers=ASKED, timeout=60,
                           files=[("files", ("报告.md", first_version, "text/markdown"))])
        assert saved.json()["files"][0]["status"] == "ingested"
        def upload_second() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is killed while it answers
                httpx.post(server.base_url + "/v1/kb/documents", headers=ASKED, timeout=60,
                           files=[("files", ("报告.md", second_version, "text/markdown"))])

        thread = threading.Thread(target=upload_second, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while (uploads / "报告.md").read_bytes() != second_version:  # saved, and being embedded
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.process.kill()  # SIGKILL: no cleanup runs
        server.process.wait()
    finally:
        server.stop()
    assert (uploads / "报告.md").read_bytes() == second_version  # what the kill left

    server = start_fake_server(env, tmp_path / "server2.log")
    try:
        assert "第一版" in texts(server.base_url)
        rescan = httpx.post(server.base_url + "/v1/kb/rescan", json={}, timeout=60).json()
        assert len(rescan["notices"]) == 1 and "set aside" in rescan["notices"][0], rescan
        assert "第一版" in texts(server.base_url) and "第二版" not in texts(server.base_url)
        assert (uploads / "报告.md").read_bytes() == first_version
        assert (uploads / ".interrupted" / "报告.md").read_bytes() == second_version
        assert sorted(p.name for p in uploads.iterdir()) == [".interrupted", "报告.md"]  # no backup, no marker
        # Asked for: it comes in as an upload would.
        asked = httpx.post(server.base_url + "/v1/kb/rescan", json={"include_interrupted": True}, timeout=60).json()
        assert asked["interrupted"] == [{"name": "报告.md", "status": "ingested"}], asked
        assert "第二版" in texts(server.base_url) and (uploads / "报告.md").read_bytes() == second_version
        assert not list((uploads / ".interrupted").iterdir())
    finally:
        server.stop()
    for log in ("server1.log", "server2.log"):
        assert "Traceback" not in (tmp_path / log).read_text(encoding="utf-8", errors="replace")


def test_max_tokens_is_capped_by_the_models_context():
    from types import SimpleNamespace

    from app.server.chat_routes import ask_options
    from app.server.openai_schema import ChatCompletionRequest
    settings = Settings()
    body = ChatCompletionRequest(model="docqa", messages=[{"role": "user", "content": "问"}], max_tokens=10**12)
    options = ask_options(body, SimpleNamespace(settings=settings), [])
    assert options.generation.max_new_tokens == settings.generation.n_ctx
    body = ChatCompletionRequest(model="docqa", messages=[{"role": "user", "content": "问"}], max_tokens=64)
    assert ask_options(body, SimpleNamespace(settings=settings), []).generation.max_new_tokens == 64


# --- file names and text that would drive the terminal or reorder what is displayed --------------------------------

# A name that retitles and clears the terminal and hides its real type behind a bidi override ("…exe.md" shows as
# "…dm.exe"), and a passage with an override inside it (the loaders drop control characters from text, not bidi).
_HOSTILE_NAME = "发票\u202efdp.exe\x1b]0;pwned\x07\x1b[2J.md"
_HOSTILE_TEXT = "# 冷却\n\n量子退火机的冷却时间是四十分钟\u202e，之后才能再次运行。\n"
_RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_QUESTION = "量子退火机的冷却时间是多少？"


@pytest.fixture
def hostile_home(tmp_path, monkeypatch):
    """A base holding a document with the hostile name and text; the faces' models are stand-ins that quote it."""
    from app.generation.testing import QuotingGenerator
    home = tmp_path / "home"
    docs = home / "docs"
    docs.mkdir(parents=True)
    (docs / _HOSTILE_NAME).write_text(_HOSTILE_TEXT, encoding="utf-8")
    (docs / "普通.md").write_text("# 普通\n\n星河数据库默认监听 7341 端口。\n", encoding="utf-8")
    monkeypatch.setenv("DOCQA_HOME", str(home))
    monkeypatch.setenv("DOCQA_CONFIG", "")
    monkeypatch.setenv("DOCQA_ANSWER__MIN_EVIDENCE_SCORE", "0")  # the hash embedder's cosines are low
    monkeypatch.setattr("app.wiring.load_embedder", lambda settings: FakeEmbedder())
    monkeypatch.setattr("app.wiring.build_generator", lambda settings: QuotingGenerator())
    assert ingest_main(["--quiet", str(docs)], embedder_factory=FakeEmbedder) == 0
    return home


def _shown_safely(text: str, face: str) -> None:
    raw = _RAW.search(text)
    assert raw is None, (face, raw and text[max(0, raw.start() - 200):raw.end() + 100])
    assert "\\u202e" in text, (face, text[:400])  # the override is shown, as an escape


def test_escape_and_bidi_characters_in_names_are_shown_escaped_on_every_face(hostile_home, capsys, caplog,
                                                                               monkeypatch, tmp_path):
    from app.cli.ask import main as ask_main
    from app.cli.chat import main as chat_main
    from app.cli.retrieval_cli import main as retrieval_main
    # python -m ingest: a file with such a name that fails is named in its line (logged: captured by caplog).
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / _HOSTILE_NAME).write_bytes(b"")
    assert ingest_main(["--quiet", str(bad)], embedder_factory=FakeEmbedder) == 1
    _shown_safely(" ".join(_warnings(caplog)), "ingest")
    capsys.readouterr()
    assert retrieval_main([_QUESTION]) == 0
    _shown_safely(capsys.readouterr().out, "retrieval")
    assert retrieval_main([_QUESTION, "--json"]) == 0
    printed = capsys.readouterr().out
    _shown_safely(printed, "retrieval --json")
    assert any(_HOSTILE_NAME == p["chunk"]["source"].rsplit("/", 1)[-1] for p in json.loads(printed)["passages"])
    assert ask_main([_QUESTION]) == 0
    asked = capsys.readouterr().out
    _shown_safely(asked, "ask")
    assert "四十分钟" in asked and "Sources:" in asked
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{_QUESTION}\n/sources\n"))
    assert chat_main([]) == 0
    chatted = capsys.readouterr().out
    _shown_safely(chatted, "chat")
    assert "四十分钟" in chatted


def test_escape_and_bidi_characters_reach_neither_the_servers_text_nor_the_page(hostile_home, tmp_path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    server = start_fake_server({"DOCQA_HOME": str(hostile_home), "DOCQA_CONFIG": "",
                                "DOCQA_ANSWER__MIN_EVIDENCE_SCORE": "0"}, tmp_path / "server.log")
    try:
        chat = {"model": "docqa", "messages": [{"role": "user", "content": _QUESTION}]}
        answered = httpx.post(server.base_url + "/v1/chat/completions", json=chat, timeout=60).json()
        content = answered["choices"][0]["message"]["content"]
        _shown_safely(content, "server")
        assert "四十分钟" in content and ("来源" in content or "Sources" in content)
        # The structured field keeps the name as it is (a client that shows it must do as docqa does).
        assert any(source["file"].endswith(_HOSTILE_NAME) for source in answered["docqa"]["sources"])
        streamed = httpx.post(server.base_url + "/v1/chat/completions", json={**chat, "stream": True}, timeout=60)
        pieces = [json.loads(line[6:]) for line in streamed.text.splitlines()
                  if line.startswith("data: {") and '"choices":[{' in line]
        _shown_safely("".join(p["choices"][0]["delta"].get("content") or "" for p in pieces), "server stream")
    finally:
        server.stop()
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app" / "web" / "chat_page.py"), default_timeout=60).run()
    at.chat_input(key="question").set_value(_QUESTION).run()
    assert not at.exception
    shown = "\n".join([*(e.value for e in at.markdown), *(e.value for e in at.sidebar.markdown),
                       *(h.proto.body for h in at.html), *(e.value for e in at.caption)])
    _shown_safely(html.unescape(shown), "page")
    assert "四十分钟" in html.unescape(shown)
    st.cache_resource.clear()


# --- a damaged base at server start --------------------------------------------------------------------------------

@pytest.mark.parametrize("fix", ["repaired", "rebuilt"])
def test_the_server_starts_on_a_damaged_base_says_why_and_recovers(tmp_path, fix):
    """Before: 60 lines of chained tracebacks and no server, so not even /health or an upload."""
    home = tmp_path / "home"
    settings = Settings(data_dir=home)
    docs = write_small_corpus(home / "docs")
    ingest_with_hash_embedder(settings, [docs])
    documents = _documents(settings.kb_path)
    catalog = generation_paths(settings.kb_path, read_current(settings.kb_path)).catalog
    intact = catalog.read_bytes()
    catalog.write_bytes(intact[: len(intact) // 2])
    server = start_fake_server({"DOCQA_HOME": str(home), "DOCQA_CONFIG": "", "DOCQA_ANSWER__MIN_EVIDENCE_SCORE": "0"},
                               tmp_path / "server.log")
    base = server.base_url
    chat = {"model": "docqa", "messages": [{"role": "user", "content": "星河数据库默认监听哪个端口？"}]}
    try:
        health = httpx.get(base + "/health", timeout=30).json()
        assert health["status"] == "degraded" and "catalog.sqlite3: damaged" in health["problem"], health
        for response in (httpx.get(base + "/v1/kb/documents", timeout=30),
                         httpx.post(base + "/v1/kb/retrieve", json={"query": "端口"}, timeout=30),
                         httpx.post(base + "/v1/chat/completions", json=chat, timeout=30),
                         httpx.post(base + "/v1/kb/documents", headers=ASKED, timeout=30,
                                    files=[("files", ("新.md", "# 新\n\n新的内容。\n".encode(), "text/markdown"))])):
            assert response.status_code in (409, 503), response.text
            message = response.json()["error"]["message"]  # one line naming the file and the fix
            assert "catalog.sqlite3" in message and "rebuild with" in message and "\n" not in message, message
        if fix == "repaired":
            catalog.write_bytes(intact)
        else:  # the fix the message names: a rebuild from the folders (here while the server runs)
            report = run_ingest(settings, [docs], IngestOptions(rebuild=True),
                                embedder_factory=FakeEmbedder)
            assert report.committed
        assert httpx.get(base + "/health", timeout=30).json() == {"status": "ok"}
        listed = httpx.get(base + "/v1/kb/documents", timeout=30).json()["documents"]
        assert sorted(d["path"] for d in listed) == sorted(documents)
        assert "7341" in httpx.post(base + "/v1/chat/completions", json=chat, timeout=30).json()["choices"][0][
            "message"]["content"]
    finally:
        server.stop()
    log = server.log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log and log.count("the knowledge base cannot be used yet") == 1, log
    assert _documents(settings.kb_path) == documents  # nothing lost
