"""``load_document``: one file on disk to a ``LoadedDocument`` of normalised text, or a ``LoadError``.

This module checks the path (exists, regular file, readable, size, extension), hashes the bytes and hands them
to the reader for the format; every failure, including any library exception, becomes ``LoadError(path, reason)``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path

from ingest.chunking.normalize import normalize_text
from ingest.loaders.docx_loader import read_docx
from ingest.loaders.html_loader import declared_charset, read_html
from ingest.loaders.image_loader import read_image
from ingest.loaders.load_error import LoadError
from ingest.loaders.page_ocr import PageProgress, no_progress
from ingest.loaders.pdf_loader import read_pdf
from ingest.loaders.pptx_loader import read_pptx
from ingest.loaders.spreadsheet_loader import read_csv, read_xlsx
from ingest.loaders.text_decoding import decode_text
from ingest.loaders.zip_guard import check_zip_document
from ingest.records import LoadedDocument, PageText
from ingest.settings import LimitSettings, OcrSettings

__all__ = ["LoadError", "SUPPORTED_EXTENSIONS", "load_document"]

FILE_TYPES = {
    ".txt": "text", ".md": "markdown", ".markdown": "markdown", ".pdf": "pdf", ".docx": "docx",
    ".html": "html", ".htm": "html", ".xlsx": "xlsx", ".csv": "csv", ".tsv": "csv", ".pptx": "pptx",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".bmp": "image", ".tif": "image", ".tiff": "image",
    ".webp": "image",
}

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(FILE_TYPES)

_MARKDOWN_H1 = re.compile(r"^#\s+(.+)$", re.MULTILINE)
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)
_MB = 1024 * 1024
# The first line of a plain-text file is its title when it is this short (a longer one is a sentence).
MAX_TITLE_LINE_CHARS = 60


def _stat(path: Path) -> os.stat_result:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise LoadError(path, "broken symlink (target missing)" if path.is_symlink() else "no such file") from None
    except PermissionError:
        raise LoadError(path, "permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LoadError(path, "symlink loop") from None
        raise LoadError(path, f"cannot access: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise LoadError(path, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise LoadError(path, "not a regular file (device, pipe or socket)")
    return info


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except PermissionError:
        raise LoadError(path, "permission denied") from None
    except OSError as exc:
        raise LoadError(path, f"cannot read: {exc.strerror or exc}") from None


def _text_pages(data: bytes, path: str, file_type: str) -> tuple[list[PageText], str]:
    text, _ = decode_text(data, path, declared_charset(data) if file_type == "html" else None)
    if file_type == "html":
        text, title = read_html(text, path)
    else:
        text = normalize_text(text)
        if file_type == "text":
            # Indentation means nothing in plain text but costs chunk space (the seeds indent every paragraph).
            text = _INDENT.sub("", text)
        match = _MARKDOWN_H1.search(text) if file_type == "markdown" else None
        title = match.group(1).strip() if match else ""
        first_line = text.lstrip().split("\n", 1)[0].strip()
        if file_type == "text" and len(first_line) <= MAX_TITLE_LINE_CHARS:
            title = first_line.lstrip("# ")
    return [PageText(text=text, page=None)], title


def _read(data: bytes, path: Path, file_type: str, limits: LimitSettings, ocr: OcrSettings,
          on_page: PageProgress) -> tuple[list[PageText], str]:
    shown = str(path)
    if file_type == "pdf":
        return read_pdf(data, shown, limits, ocr, on_page)
    if file_type == "docx":
        check_zip_document(data, shown, ".docx", limits)
        text, title = read_docx(data, shown)
        return [PageText(text=text, page=None)], title
    if file_type == "xlsx":
        return read_xlsx(data, shown, path.name, limits)
    if file_type == "csv":
        return read_csv(data, shown, path.name, limits)
    if file_type == "pptx":
        return read_pptx(data, shown, limits)
    if file_type == "image":
        return read_image(data, shown, limits, ocr, on_page), ""
    return _text_pages(data, shown, file_type)


def load_document(path: Path, limits: LimitSettings, ocr: OcrSettings | None = None,
                  on_page: PageProgress = no_progress) -> LoadedDocument:
    """Load ``path`` as normalised text (one ``PageText`` per PDF page or slide, else one for the file).

    Scanned PDF pages and images are read by OCR as ``ocr`` says; ``on_page(done, total)`` follows the pages
    recognised. Raises ``LoadError`` for a missing, unreadable, oversized, empty, binary, encrypted or corrupt file,
    or an unsupported extension.
    """
    path = Path(path)
    shown = str(path)
    info = _stat(path)
    suffix = path.suffix.lower()
    file_type = FILE_TYPES.get(suffix)
    if file_type is None:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise LoadError(path, f"unsupported file type {suffix or '(no extension)'!r} (supported: {supported})")
    if info.st_size > limits.max_file_mb * _MB:
        raise LoadError(path, f"file is {info.st_size / _MB:.1f} MB, over the {limits.max_file_mb:g} MB limit "
                              "(limits.max_file_mb)")
    if info.st_size == 0:
        raise LoadError(path, "empty file (0 bytes)")
    data = _read_bytes(path)
    content_hash = hashlib.sha256(data).hexdigest()
    pages, title = _read(data, path, file_type, limits, ocr or OcrSettings(), on_page)
    if not any(p.text.strip() for p in pages):
        raise LoadError(path, "empty file (no text, only whitespace)" if file_type in ("text", "markdown")
                        else "no text found in the document")
    return LoadedDocument(path=shown, content_hash=content_hash, pages=pages,
                          title=title or path.stem, file_type=file_type)
