"""PDF pages to text with pypdf, one ``PageText`` per page (1-based page numbers).

Decided page by page: a page whose text layer is empty or thinner than ``OcrSettings.thin_text_chars`` and that
holds an image is rendered with pypdfium2 and read by OCR (when the "ocr" extra is installed); pages with text
keep their text, and blank or title-only pages of a text PDF are not rendered at all (no OCR cost for them).
"""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from ingest.chunking.normalize import normalize_text
from ingest.loaders.load_error import LoadError
from ingest.loaders.ocr_engine import OcrUnavailable, installed_engine, load_ocr_engine
from ingest.loaders.page_ocr import PageProgress, no_progress, ocr_page
from ingest.records import PageText
from ingest.settings import LimitSettings, OcrSettings

POINTS_PER_INCH = 72


def _open(data: bytes, path: str) -> PdfReader:
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
        if len(reader.pages) == 0:
            raise LoadError(path, "corrupt or truncated PDF (no pages)")
    except LoadError:
        raise
    except FileNotDecryptedError as exc:
        raise LoadError(path, "encrypted PDF (a password is required)") from exc
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on broken files
        raise LoadError(path, f"corrupt or truncated PDF ({type(exc).__name__}: {exc})") from exc
    return reader


def _is_thin(text: str, ocr: OcrSettings) -> bool:
    return sum(1 for ch in text if not ch.isspace()) < max(ocr.thin_text_chars, 1)


def _open_pdfium(data: bytes, path: str):
    import pypdfium2

    try:
        return pypdfium2.PdfDocument(data, password="")
    except Exception as exc:  # pdfium's own error type for files pypdf accepted
        raise LoadError(path, f"cannot render pages for OCR ({type(exc).__name__}: {exc})") from exc


def _with_images(document, numbers: list[int]) -> list[int]:
    """The pages among ``numbers`` that hold an image: only those can be scans worth recognising."""
    import pypdfium2.raw

    out = []
    for number in numbers:
        page = document[number - 1]
        try:
            if next(page.get_objects(filter=(pypdfium2.raw.FPDF_PAGEOBJ_IMAGE,)), None) is not None:
                out.append(number)
        finally:
            page.close()
    return out


def _ocr_pages(document, path: str, numbers: list[int], limits: LimitSettings, ocr: OcrSettings,
               on_page: PageProgress) -> dict[int, str]:
    """Text recognised on the pages ``numbers`` (1-based), each rendered at ``ocr.dpi`` or lower if the image
    would exceed ``limits.max_image_pixels``."""
    try:
        engine = load_ocr_engine(ocr)
    except OcrUnavailable as exc:
        raise LoadError(path, f"{len(numbers)} page(s) need OCR but {exc}") from exc
    out: dict[int, str] = {}
    for done, number in enumerate(numbers, 1):
        page = document[number - 1]
        try:
            width, height = page.get_size()
            scale = ocr.dpi / POINTS_PER_INCH
            pixels = width * scale * height * scale
            if pixels > limits.max_image_pixels:
                scale *= (limits.max_image_pixels / pixels) ** 0.5
            image = page.render(scale=scale).to_pil()
        except Exception as exc:
            raise LoadError(path, f"page {number}: cannot render for OCR ({type(exc).__name__}: {exc})") from exc
        finally:
            page.close()
        out[number] = ocr_page(image, engine, ocr)
        on_page(done, len(numbers))
    return out


def read_pdf(data: bytes, path: str, limits: LimitSettings | None = None, ocr: OcrSettings | None = None,
             on_page: PageProgress = no_progress) -> tuple[list[PageText], str]:
    """Return the normalised text of every page and the title from the PDF metadata ("" if none)."""
    limits = limits or LimitSettings()
    ocr = ocr or OcrSettings()
    # pypdf logs every repair it makes to a damaged file; the user only needs our one-line error.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = _open(data, path)
    n_pages = len(reader.pages)
    if n_pages > limits.max_pages:
        raise LoadError(path, f"{n_pages} pages, over the limit of {limits.max_pages} (limits.max_pages)")
    pages = []
    for number in range(1, n_pages + 1):
        try:
            raw = reader.pages[number - 1].extract_text() or ""
        except Exception as exc:  # same reason as above: any pypdf failure is a broken page
            raise LoadError(path, f"page {number}: cannot extract text ({type(exc).__name__}: {exc})") from exc
        pages.append(PageText(text=normalize_text(raw, pdf_lines=True), page=number))
    thin = [p.page for p in pages if p.page is not None and _is_thin(p.text, ocr)]
    if thin and installed_engine(ocr) is not None:
        document = _open_pdfium(data, path)
        try:
            scanned = _with_images(document, thin)
            if len(scanned) > limits.max_ocr_pages:
                raise LoadError(path, f"{len(scanned)} scanned page(s) need OCR, over the limit of "
                                      f"{limits.max_ocr_pages} (limits.max_ocr_pages)")
            recognised = _ocr_pages(document, path, scanned, limits, ocr, on_page)
        finally:
            document.close()
        for page in pages:
            if page.page in recognised and len(recognised[page.page]) > len(page.text):
                page.text = recognised[page.page]
    if not any(p.text.strip() for p in pages):
        hint = "" if installed_engine(ocr) is not None else "; install the 'ocr' extra to read scanned pages"
        raise LoadError(path, f"no extractable text in {n_pages} page(s) (scanned?){hint}")
    return pages, _title(reader)


def _title(reader: PdfReader) -> str:
    try:
        meta = reader.metadata
        return (meta.title or "").strip() if meta else ""
    except Exception:  # a broken info dictionary only costs the title
        return ""
