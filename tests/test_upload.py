"""Uploads: sanitised names that never leave the upload folder, the size limit, per-file failures, and the real
incremental ingest (with a fast stand-in embedder) keeping folder and knowledge base in step."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from app_fakes import SMALL_CORPUS

from app.config import LimitSettings, Settings
from app.uploads.saving import UploadError, sanitize_filename, save_upload, save_uploads, settle, stage_upload
from app.uploads.upload_ingest import ingest_uploads
from app.web.ui_sidebar import upload_fraction
from ingest.loaders.document_loader import SUPPORTED_EXTENSIONS
from ingest.loaders.ocr_engine import OcrLine
from ingest.pipeline.progress import COMMIT, EMBED, LOAD, OCR, SAVE, IngestProgress
from ingest.store.knowledge_base import KnowledgeBase
from ingest.testing.fake_embedder import FakeEmbedder

DOC = "星河数据库默认监听 7341 端口。".encode()


@pytest.mark.parametrize("given, expected", [
    ("notes.md", "notes.md"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
    ("/abs/path/报告.PDF", "报告.pdf"),
    (".hidden.md", "hidden.md"),
    ("..md.md", "md.md"),
    ('a<b>:c|d?"e*.txt', "a_b__c_d__e_.txt"),
    ("tab\tand\nnewline.md", "tab_and_newline.md"),
    ("  spaced   name .txt", "spaced name.txt"),
    ("nul\x00byte.md", "nul_byte.md"),
])
def test_names_are_sanitised_to_a_plain_file_name(given, expected):
    assert sanitize_filename(given, SUPPORTED_EXTENSIONS) == expected


@pytest.mark.parametrize("given, problem", [
    ("malware.exe", "not supported"),
    ("noextension", "not supported"),
    ("../..", "not supported"),
    ("....txt", "not supported"),
    ("<>:.md", "no usable characters"),
    ("", "not supported"),
])
def test_unusable_names_are_refused_with_the_reason(given, problem):
    with pytest.raises(UploadError, match=problem) as info:
        sanitize_filename(given, SUPPORTED_EXTENSIONS)
    assert str(info.value).startswith(given or "(no name)")


def test_long_names_are_cut_to_255_bytes_keeping_the_extension():
    name = sanitize_filename("文" * 200 + ".md", SUPPORTED_EXTENSIONS)
    assert name.endswith(".md") and len(name.encode()) <= 255


def _saved(name: str, data: bytes, folder: Path):
    return save_upload(stage_upload(name, io.BytesIO(data), folder, LimitSettings()), folder, SUPPORTED_EXTENSIONS)


def test_uploads_land_only_in_the_upload_folder(tmp_path):
    folder = tmp_path / "uploads"
    saved = _saved("../../escape.md", DOC, folder)
    assert saved.path == (folder / "escape.md").resolve()
    assert [p.name for p in tmp_path.rglob("*.md")] == ["escape.md"]


def test_a_file_over_the_upload_limit_is_refused_by_name_without_being_kept(tmp_path):
    limits = LimitSettings(max_upload_mb=0.001)
    with pytest.raises(UploadError, match=r"big\.txt: over the upload limit of 0\.001 MB \(limits\.max_upload_mb\)"):
        stage_upload("big.txt", io.BytesIO(b"x" * 2000), tmp_path, limits)
    assert not list(tmp_path.iterdir())


def test_failed_files_are_reported_without_losing_the_rest(tmp_path):
    files = [("good.md", DOC), ("bad.exe", b"MZ"), ("empty.txt", b""), ("good.md", DOC + b"2"), ("other.txt", DOC)]
    staged = [stage_upload(name, io.BytesIO(data), tmp_path, LimitSettings()) for name, data in files]
    result = save_uploads(staged, tmp_path, SUPPORTED_EXTENSIONS)
    assert [s.path.name for s in result.saved] == ["good.md", "other.txt"]
    assert [(f.name, f.reason.split(" ")[0]) for f in result.failures] == [
        ("bad.exe", "file"), ("empty.txt", "the"), ("good.md", "another")]
    assert (tmp_path / "good.md").read_bytes() == DOC
    for saved in result.saved:
        settle(saved, ingested=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.md", "other.txt"]  # no staged file left behind


def test_a_replaced_upload_is_restored_when_the_new_version_fails(tmp_path):
    first = _saved("a.md", DOC, tmp_path)
    settle(first, ingested=True)
    second = _saved("a.md", b"new version", tmp_path)
    assert second.previous is not None and (tmp_path / "a.md").read_bytes() == b"new version"
    settle(second, ingested=False)
    assert (tmp_path / "a.md").read_bytes() == DOC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md"]
    assert _saved("a.md", DOC, tmp_path).unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md"]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "home")


def _sources(settings: Settings) -> list[str]:
    with KnowledgeBase.open(settings.kb_path) as kb:
        return sorted(Path(d.path).name for d in kb.documents())


def test_uploads_run_the_incremental_ingest_and_report_each_file(settings):
    progress: list[IngestProgress] = []
    files = [(name, text.encode()) for name, text in SMALL_CORPUS.items()]
    files += [("broken.pdf", b"%PDF-1.4 not really a pdf"), ("../evil.exe", b"MZ")]
    outcome = ingest_uploads(files, settings, progress.append, embedder=FakeEmbedder())
    assert sorted(outcome.ingested) == sorted(SMALL_CORPUS)
    assert [f.name for f in outcome.failures] == ["../evil.exe", "broken.pdf"]
    assert "not supported" in outcome.failures[0].reason and "corrupt or truncated PDF" in outcome.failures[1].reason
    assert _sources(settings) == sorted(SMALL_CORPUS)
    # The failed PDF is not left behind in the upload folder; the good files are.
    assert sorted(p.name for p in settings.upload_path.iterdir()) == sorted(SMALL_CORPUS)
    # One ingest: saving, then each phase of the run once, each counting up to its total.
    phases = list(dict.fromkeys(e.phase for e in progress))
    assert phases == [SAVE, LOAD, EMBED, COMMIT]
    for phase in phases:
        events = [e for e in progress if e.phase == phase]
        assert [e.done for e in events] == sorted(e.done for e in events) and events[-1].done == events[-1].total
    loaded = [Path(e.file).name for e in progress if e.phase == LOAD and e.file]
    assert sorted(loaded) == sorted([*SMALL_CORPUS, "broken.pdf"])  # the bad name never reached the ingest
    fractions = [upload_fraction(e) for e in progress]  # the chat page's bar only moves forward, to the end
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    again = ingest_uploads(files[:1], settings, embedder=FakeEmbedder())
    assert again.unchanged == [files[0][0]] and not again.ingested


def test_an_updated_upload_replaces_the_document(settings):
    ingest_uploads([("a.md", DOC)], settings, embedder=FakeEmbedder())
    outcome = ingest_uploads([("a.md", "星河数据库改为监听 8080 端口。".encode())], settings, embedder=FakeEmbedder())
    assert outcome.ingested == ["a.md"] and outcome.report.files_updated == 1
    with KnowledgeBase.open(settings.kb_path) as kb:
        assert ["8080" in c.text for c in kb.iter_chunks()] == [True]


class _CountingOcr:
    """A stand-in OCR engine that reads the same line from every page and counts the pages it was given."""

    name = "counting"

    def __init__(self) -> None:
        self.pages = 0

    def recognise(self, image) -> list[OcrLine]:
        self.pages += 1
        return [OcrLine("扫描件：星河数据库默认监听 7341 端口。", 0.99, 10, 10, 300, 30)]


def test_a_scanned_upload_is_recognised_once(settings, monkeypatch):
    from PIL import Image

    import ingest.loaders.image_loader as image_loader

    engine = _CountingOcr()
    monkeypatch.setattr(image_loader, "load_ocr_engine", lambda ocr: engine)
    scan = io.BytesIO()
    Image.new("RGB", (320, 80), "white").save(scan, "PNG")
    progress: list[IngestProgress] = []
    outcome = ingest_uploads([("扫描.png", scan.getvalue())], settings, progress.append, embedder=FakeEmbedder())
    assert outcome.ingested == ["扫描.png"] and engine.pages == 1
    assert [(e.done, e.total) for e in progress if e.phase == OCR] == [(1, 1)]
    assert [e.done for e in progress if e.phase == LOAD] == [0, 1]  # the file was loaded by one run

