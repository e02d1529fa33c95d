"""PDF pages to text with pypdf, one ``PageText`` per page (1-based page numbers)."""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from ingest.chunking.normalize import normalize_text
from ingest.loaders.load_error import LoadError
from ingest.records import PageText


def read_pdf(data: bytes, path: str) -> tuple[list[PageText], str]:
    """Return the normalised text of every page and the title from the PDF metadata ("" if none)."""
    # pypdf logs every repair it makes to a damaged file; the user only needs our one-line error.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many PDFs are "encrypted" only to restrict printing/copying, with an empty user password.
            try:
                opened = reader.decrypt("")
            except DependencyError as exc:
                raise LoadError(path, f"encrypted PDF needing an extra package: {exc}") from exc
            if not opened:
                raise LoadError(path, "encrypted PDF (a password is required)")
        n_pages = len(reader.pages)
    except LoadError:
        raise
    except FileNotDecryptedError as exc:
        raise LoadError(path, "encrypted PDF (a password is required)") from exc
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on broken files
        raise LoadError(path, f"corrupt or truncated PDF ({type(exc).__name__}: {exc})") from exc
    if n_pages == 0:
        raise LoadError(path, "corrupt or truncated PDF (no pages)")
    pages = []
    for number in range(1, n_pages + 1):
        try:
            raw = reader.pages[number - 1].extract_text() or ""
        except Exception as exc:  # same reason as above: any pypdf failure is a broken page
            raise LoadError(path, f"page {number}: cannot extract text ({type(exc).__name__}: {exc})") from exc
        pages.append(PageText(text=normalize_text(raw, pdf_lines=True), page=number))
    if not any(p.text.strip() for p in pages):
        raise LoadError(path, f"no extractable text in {n_pages} page(s) (scanned?)")
    return pages, _title(reader)


def _title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        return (meta.title or "").strip() if meta else ""
    except Exception:  # a broken info dictionary only costs the title
        return ""
