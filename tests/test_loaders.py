"""load_document on real files of every supported format, and a clear LoadError for every kind of bad input."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from app.config import LimitSettings
from ingest.loaders.document_loader import (
    SUPPORTED_EXTENSIONS,
    LoadError,
    load_document,
)
from ingest.testing.documents import SAMPLE_DIR, pdf_bytes, write_docx

LIMITS = LimitSettings()
CHINESE = "检索增强生成先检索相关文档，再让模型根据资料回答问题。"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def load_error(path: Path, limits: LimitSettings = LIMITS) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_document(path, limits)
    err = info.value
    assert str(err) == f"{path}: {err.reason}" and err.path == str(path)
    assert "\n" not in str(err)
    return err


# --- text encodings -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding, data", [
    ("utf-8", CHINESE.encode("utf-8")),
    ("utf-8 BOM", b"\xef\xbb\xbf" + CHINESE.encode("utf-8")),
    ("utf-16 LE BOM", CHINESE.encode("utf-16")),
    ("utf-16 BE BOM", b"\xfe\xff" + CHINESE.encode("utf-16-be")),
    ("gbk", CHINESE.encode("gbk")),
    ("gb18030", (CHINESE + "𠀀").encode("gb18030")),
])
def test_text_encodings_are_detected(tmp_path: Path, encoding: str, data: bytes) -> None:
    expected = CHINESE + ("𠀀" if encoding == "gb18030" else "")
    doc = load_document(write(tmp_path, "note.txt", data), LIMITS)
    assert doc.pages[0].text == expected
    assert doc.pages[0].page is None and doc.file_type == "text"


@pytest.mark.parametrize("text", ["你好", "模型参数", "大模型的温度参数是多少？"])
def test_short_gbk_files_are_not_misread(tmp_path: Path, text: str) -> None:
    # Statistical detectors guess Big5/cp1252 etc. for a few GBK bytes; the GB18030 step must win.
    doc = load_document(write(tmp_path, "short.txt", text.encode("gbk")), LIMITS)
    assert doc.pages[0].text == text


def test_latin1_text_is_not_taken_for_gbk(tmp_path: Path) -> None:
    text = "Le café naïve: a résumé of the déjà vu problem in generation."
    doc = load_document(write(tmp_path, "fr.txt", text.encode("cp1252")), LIMITS)
    assert doc.pages[0].text == text


def test_utf8_with_a_cut_off_last_character(tmp_path: Path) -> None:
    data = (CHINESE * 3).encode("utf-8")[:-1]
    doc = load_document(write(tmp_path, "cut.txt", data), LIMITS)
    assert doc.pages[0].text == (CHINESE * 3)[:-1]


def test_big5_text_is_not_taken_for_gbk(tmp_path: Path) -> None:
    text = "模型參數說明，這是繁體中文的一段測試文字。"
    doc = load_document(write(tmp_path, "big5.txt", text.encode("big5")), LIMITS)
    assert doc.pages[0].text == text


def test_content_hash_is_sha256_of_bytes_and_title(tmp_path: Path) -> None:
    data = "# 检索增强生成\n\n正文。\n".encode("utf-8")
    doc = load_document(write(tmp_path, "rag.md", data), LIMITS)
    assert doc.content_hash == hashlib.sha256(data).hexdigest()
    assert doc.title == "检索增强生成" and doc.file_type == "markdown"
    assert doc.pages[0].text == "# 检索增强生成\n\n正文。"


def test_markdown_extension_variants_and_case(tmp_path: Path) -> None:
    assert {".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm"} <= SUPPORTED_EXTENSIONS
    doc = load_document(write(tmp_path, "NOTE.MARKDOWN", b"## Title\n\nBody text."), LIMITS)
    assert doc.file_type == "markdown"


def test_stray_nul_bytes_are_cleaned(tmp_path: Path) -> None:
    data = ("这是一段很长的正常文本。" * 20).encode("utf-8") + b"\x00" + "结尾。".encode("utf-8")
    doc = load_document(write(tmp_path, "nul.txt", data), LIMITS)
    assert "\x00" not in doc.pages[0].text and doc.pages[0].text.endswith("结尾。")


# --- PDF ------------------------------------------------------------------------------------------------------

def test_pdf_keeps_page_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "paper.pdf", pdf_bytes([["Retrieval first.", "Then generation."], ["Second page here."]]))
    doc = load_document(path, LIMITS)
    assert [p.page for p in doc.pages] == [1, 2]
    assert "Retrieval first." in doc.pages[0].text and "Second page here." in doc.pages[1].text
    assert doc.file_type == "pdf" and doc.title == "paper"


def test_chromium_chinese_pdf_has_no_radical_code_points() -> None:
    doc = load_document(SAMPLE_DIR / "tokenizer_notes.pdf", LIMITS)
    assert [p.page for p in doc.pages] == [1, 2]
    text = "".join(p.text for p in doc.pages)
    assert not [ch for ch in text if 0x2E80 <= ord(ch) <= 0x2FDF], "Kangxi/radical code points left in text"
    assert "常见的分词算法" in doc.pages[0].text  # 见 comes out of the PDF as the radical ⻅
    assert "大语言模型看到的不是汉字或单词" in doc.pages[0].text  # wrapped lines re-joined, 大/言 from Kangxi
    assert doc.title == "分词器与上下文窗口"


def test_pdf_with_empty_user_password_opens(tmp_path: Path) -> None:
    path = write(tmp_path, "restricted.pdf", pdf_bytes([["Readable text."]], user_password=""))
    assert "Readable text." in load_document(path, LIMITS).pages[0].text


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.pdf", pdf_bytes([["Hidden text."]], user_password="s3cret"))
    assert "encrypted" in load_error(path).reason


@pytest.mark.parametrize("cut", [0.5, 0.2])
def test_truncated_pdf(tmp_path: Path, cut: float) -> None:
    data = pdf_bytes([["Some text on page one."], ["More text on page two."]])
    path = write(tmp_path, "cut.pdf", data[: int(len(data) * cut)])
    assert "corrupt or truncated PDF" in load_error(path).reason


def test_garbage_named_pdf(tmp_path: Path) -> None:
    assert "corrupt or truncated PDF" in load_error(write(tmp_path, "x.pdf", b"this is not a pdf\n" * 10)).reason


def test_image_only_pdf(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.pdf", pdf_bytes([[], []], draw_only=True))
    assert load_error(path).reason == "no extractable text in 2 page(s) (scanned?)"


# --- DOCX and HTML --------------------------------------------------------------------------------------------

def test_docx_headings_lists_and_tables(tmp_path: Path) -> None:
    doc = load_document(write_docx(tmp_path / "guide.docx"), LIMITS)
    text = doc.pages[0].text
    assert text.startswith("# 部署指南\n\n本文说明如何在离线环境中部署问答系统。\n\n## 依赖")
    assert "- 需要 Python 3.11 以及 faiss-cpu。" in text
    assert "| 组件 | 版本 |\n| --- | --- |\n| pypdf | 7.1 |" in text
    assert doc.title == "部署指南" and doc.file_type == "docx"


def test_corrupt_docx(tmp_path: Path) -> None:
    assert "not a valid .docx file" in load_error(write(tmp_path, "bad.docx", b"PK\x03\x04broken")).reason


def test_html_visible_text_only(tmp_path: Path) -> None:
    page = """<html><head><title>RAG 简介</title><style>p {color: red}</style></head><body>
    <script>var secret = "不要出现";</script><h1>RAG 简介</h1><p>先<b>检索</b>，再生成。</p>
    <h2>步骤</h2><ul><li>切块</li><li>索引</li></ul><noscript>请启用脚本</noscript></body></html>"""
    doc = load_document(write(tmp_path, "page.htm", page.encode("utf-8")), LIMITS)
    text = doc.pages[0].text
    assert text == "# RAG 简介\n\n先检索，再生成。\n\n## 步骤\n\n切块\n\n索引"
    assert doc.title == "RAG 简介" and doc.file_type == "html"


def test_html_declared_charset_is_used(tmp_path: Path) -> None:
    page = '<html><head><meta charset="big5"></head><body><p>模型參數說明</p></body></html>'
    doc = load_document(write(tmp_path, "big5.html", page.encode("big5")), LIMITS)
    assert doc.pages[0].text == "模型參數說明"


def test_gbk_html(tmp_path: Path) -> None:
    page = "<html><body><p>温度越低，输出越确定。</p></body></html>"
    doc = load_document(write(tmp_path, "gbk.html", page.encode("gbk")), LIMITS)
    assert doc.pages[0].text == "温度越低，输出越确定。"


# --- bad input ------------------------------------------------------------------------------------------------

def test_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.md").reason == "no such file"


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()
    assert load_error(tmp_path / "folder.md").reason == "is a directory, not a file"


def test_unsupported_extension(tmp_path: Path) -> None:
    reason = load_error(write(tmp_path, "sheet.numbers", b"data")).reason
    assert reason.startswith("unsupported file type '.numbers'") and ".pdf" in reason


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file (0 bytes)"),
    (b" \n\t\r\n  \n", "empty file (no text, only whitespace)"),
    ("\u3000\n".encode("utf-8"), "empty file (no text, only whitespace)"),
])
def test_empty_files(tmp_path: Path, data: bytes, reason: str) -> None:
    assert load_error(write(tmp_path, "empty.txt", data)).reason == reason


def test_binary_renamed_to_text(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    assert load_error(write(tmp_path, "photo.txt", png)).reason == "binary file (a PNG image), not text"


def test_binary_with_many_nul_bytes(tmp_path: Path) -> None:
    data = bytes([7, 0, 0, 0, 65, 0, 200, 0]) * 200
    assert "NUL bytes" in load_error(write(tmp_path, "blob.md", data)).reason


def test_undecodable_control_heavy_bytes(tmp_path: Path) -> None:
    data = bytes([1, 2, 3, 4, 5, 6, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]) * 50
    assert "binary content" in load_error(write(tmp_path, "ctrl.txt", data)).reason


def test_file_over_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "big.txt", b"a" * 3 * 1024 * 1024)
    reason = load_error(path, LimitSettings(max_file_mb=2)).reason
    assert reason == "file is 3.0 MB, over the 2 MB limit (limits.max_file_mb)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.txt", b"text")
    path.chmod(0)
    assert load_error(path).reason == "permission denied"


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.txt").symlink_to(tmp_path / "b.txt")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    assert load_error(tmp_path / "a.txt").reason == "symlink loop"


def test_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "link.md").symlink_to(tmp_path / "gone.md")
    assert load_error(tmp_path / "link.md").reason == "broken symlink (target missing)"


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    assert "not a regular file" in load_error(tmp_path / "pipe.txt").reason


def test_sample_corpus_loads() -> None:
    files = sorted(p for p in SAMPLE_DIR.iterdir() if p.suffix in SUPPORTED_EXTENSIONS)
    assert len(files) >= 5
    for path in files:
        doc = load_document(path, LIMITS)
        assert doc.title and all(p.text == p.text.strip() for p in doc.pages)
