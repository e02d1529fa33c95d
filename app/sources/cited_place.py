"""``cited_place``: a cited chunk shown where it stands in its original file.

- PDF page with a text layer: the page rendered by pdfium, the cited text's lines highlighted (``pdf_page``);
- a page or image read by OCR: recognised again on demand, the cited lines highlighted (``ocr_boxes``);
- a deck: the slide's text with the cited sentence marked; a sheet or CSV: the cited row(s) with their header;
- text, Markdown, Word, HTML: the passage in context with the cited sentence marked.

The original is read from the path the ingest recorded and must still hash to the indexed content; when it is
gone, changed, unreadable or damaged, the place is the stored chunk text with one line saying why. Images are
PNG bytes drawn here; text comes back as text for the face's literal rendering: nothing from a document becomes
markup.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence

from app.sources.highlight import Box, draw_highlights, png_bytes
from app.sources.ocr_boxes import cited_line_boxes, recognised_lines
from app.sources.pdf_page import (
    cited_spans,
    get_page,
    has_image,
    open_pdf,
    page_text,
    render,
    span_boxes,
)
from app.sources.text_match import locate
from ingest.loaders.document_loader import FILE_TYPES, LoadError, load_document
from ingest.loaders.ocr_engine import OcrUnavailable
from ingest.loaders.table_records import FIELD_SEPARATOR
from ingest.records import Chunk
from ingest.settings import LimitSettings, OcrSettings

# Pages are drawn at this resolution: sharp on a laptop screen, a few hundred kilobytes of PNG for A4.
RENDER_DPI = 144
# A page image (an OCR'd photo, a page rendered for OCR) is shrunk to at most this width before it is shown.
MAX_DISPLAY_WIDTH = 1600
# A poster-sized page is drawn at a lower resolution than RENDER_DPI so its PNG stays a few megabytes.
MAX_PAGE_PIXELS = 12_000_000
# The passage of a text file is shown with about this many characters on each side, cut at paragraph breaks.
CONTEXT_CHARS = 800
_MB = 1024 * 1024


@dataclass(frozen=True)
class CitedPlace:
    """What to show for one citation. ``kind``: "page" (``png``: the page with the cited region highlighted),
    "text" (``text`` with ``span`` highlighted) or "row" (``rows``: the cited table rows as header → value, and
    the sheet's text around them as for "text")."""

    kind: str
    source: str
    page: int | None = None
    page_count: int | None = None
    png: bytes = b""
    text: str = ""
    span: tuple[int, int] | None = None
    rows: list[dict[str, str]] = field(default_factory=list)
    # False when the cited text could not be found on the original (the page or passage is shown unmarked).
    located: bool = True
    # One line for the user when the original cannot be shown as cited ("" when it can).
    notice: str = ""


def _outer(spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None


def stored_place(chunk: Chunk, quote: str, notice: str) -> CitedPlace:
    """The chunk's text as the knowledge base stored it, the quote marked in it; when the original cannot serve."""
    span = _outer(locate(quote, chunk.text)) if quote else None
    return CitedPlace("text", chunk.source, chunk.page, text=chunk.text, span=span, notice=notice,
                      located=span is not None or not quote)


def _read_original(chunk: Chunk, limits: LimitSettings) -> bytes:
    """The original's bytes; LoadError naming the problem when it is gone, unreadable, too big or changed."""
    path = Path(chunk.source)
    try:
        size = path.stat().st_size
        if size > limits.max_file_mb * _MB:
            raise LoadError(path, f"file is {size / _MB:.1f} MB, over the {limits.max_file_mb:g} MB limit")
        data = path.read_bytes()
    except FileNotFoundError:
        raise LoadError(path, "the original is no longer at this path (moved or deleted since it was indexed)") \
            from None
    except OSError as exc:
        raise LoadError(path, f"cannot read the original: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != chunk.doc_id:
        raise LoadError(path, "the original changed since it was indexed (re-index it to cite the new version)")
    return data


def _scaled(image: Image.Image, boxes: list[Box], factor: float) -> tuple[Image.Image, list[Box]]:
    if factor >= 1:
        return image, boxes
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return (image.resize(size, Image.Resampling.LANCZOS),
            [Box(b.x0 * factor, b.y0 * factor, b.x1 * factor, b.y1 * factor) for b in boxes])


def _ocr_boxes(chunk: Chunk, image: Image.Image, cited: str, dpi: int, ocr: OcrSettings) -> tuple[list[Box], str]:
    """The cited lines on a page image read by OCR, and a notice when OCR is not available here."""
    try:
        lines = recognised_lines((chunk.doc_id, chunk.page or 0, dpi), image, ocr)
    except OcrUnavailable as exc:
        return [], f"{chunk.source}: this page was read by OCR, which cannot run now ({exc}): shown unmarked"
    return cited_line_boxes(lines, cited), ""


def _pdf_page_place(data: bytes, chunk: Chunk, number: int, cited: str, ocr: OcrSettings,
                    limits: LimitSettings) -> CitedPlace:
    document = open_pdf(data, chunk.source)
    try:
        page = get_page(document, number, chunk.source)
        try:
            layer = page_text(page)
            notice = ""
            # The ingest's rule (ingest/loaders/pdf_loader.py): a page with a thin text layer and an image is a scan.
            if sum(not ch.isspace() for ch in layer.text) < max(ocr.thin_text_chars, 1) and has_image(page):
                image, _ = render(page, ocr.dpi, limits.max_image_pixels)
                boxes, notice = _ocr_boxes(chunk, image, cited, ocr.dpi, ocr)
                image, boxes = _scaled(image, boxes, RENDER_DPI / ocr.dpi)
            else:
                image, _ = render(page, RENDER_DPI, min(limits.max_image_pixels, MAX_PAGE_PIXELS))
                boxes = span_boxes(page, layer, cited_spans(layer, cited, chunk.text), image.size)
        finally:
            page.close()
        return CitedPlace("page", chunk.source, number, len(document), png_bytes(draw_highlights(image, boxes)),
                          located=bool(boxes), notice=notice)
    finally:
        document.close()


def _pdf_place(data: bytes, chunk: Chunk, cited: str, ocr: OcrSettings, limits: LimitSettings) -> CitedPlace:
    number = chunk.page or 1
    place = _pdf_page_place(data, chunk, number, cited, ocr, limits)
    # A passage merged with its neighbours may cite a sentence printed on the next (or previous) page.
    for other in (number + 1, number - 1):
        if place.located or not 1 <= other <= (place.page_count or 0):
            continue
        nearby = _pdf_page_place(data, chunk, other, cited, ocr, limits)
        if nearby.located:
            return nearby
    if not place.located and not place.notice:
        return replace(place, notice=f"{chunk.source}: the cited text was not found in the text of page {number}: "
                                     "the page is shown unmarked")
    return place


def _image_place(data: bytes, chunk: Chunk, cited: str, ocr: OcrSettings, limits: LimitSettings) -> CitedPlace:
    try:
        image = Image.open(io.BytesIO(data))
        frames = getattr(image, "n_frames", 1)
        number = chunk.page or 1
        if not 1 <= number <= frames:
            raise LoadError(chunk.source, f"frame {number} is not in the image (it has {frames})")
        frame = ImageSequence.Iterator(image)[number - 1]
        if frame.width * frame.height > limits.max_image_pixels:
            raise LoadError(chunk.source, f"image is {frame.width}x{frame.height}, over limits.max_image_pixels")
        frame.load()
        if frames == 1:
            frame = ImageOps.exif_transpose(frame)  # as the ingest read it
    except LoadError:
        raise
    except Exception as exc:  # Pillow raises many types on broken files
        raise LoadError(chunk.source, f"not a readable image ({type(exc).__name__}: {exc})") from None
    boxes, notice = _ocr_boxes(chunk, frame, cited, 0, ocr)
    if not boxes and not notice:
        notice = f"{chunk.source}: the cited text was not found on the image: shown unmarked"
    frame, boxes = _scaled(frame, boxes, MAX_DISPLAY_WIDTH / max(frame.width, 1))
    return CitedPlace("page", chunk.source, chunk.page, frames if frames > 1 else None,
                      png_bytes(draw_highlights(frame, boxes)), located=bool(boxes), notice=notice)


def _cited_span(text: str, chunk: Chunk, quote: str) -> tuple[tuple[int, int], bool]:
    """Where the quote (else the chunk) is in the page text, and whether the quote was found there."""
    chunk_span = (chunk.char_start, chunk.char_end) if 0 <= chunk.char_start < chunk.char_end <= len(text) \
        else _outer(locate(chunk.text, text)) or (0, 0)
    if quote:
        found = _outer(locate(quote, text, near=chunk_span[0]))
        if found:
            return found, True
    return chunk_span, not quote


def _context(text: str, span: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """About ``CONTEXT_CHARS`` of ``text`` on each side of ``span``, cut at paragraph breaks when there are any."""
    a, b = span
    start, end = max(0, a - CONTEXT_CHARS), min(len(text), b + CONTEXT_CHARS)
    para = text.find("\n\n", start, a)
    start = para + 2 if para >= 0 and start > 0 else start
    para = text.rfind("\n\n", b, end)
    end = para if para >= 0 and end < len(text) else end
    return text[start:end], (a - start, b - start)


def _record_rows(text: str, span: tuple[int, int]) -> list[dict[str, str]]:
    """The table records (``列名: 值；…`` lines) that ``span`` touches, as header → value."""
    start = text.rfind("\n", 0, span[0]) + 1
    end = text.find("\n", max(span[1] - 1, start))
    rows = []
    for line in text[start:end if end >= 0 else len(text)].split("\n"):
        fields = [f.split(": ", 1) for f in line.split(FIELD_SEPARATOR)]
        if line.strip() and all(len(f) == 2 for f in fields):
            rows.append({name: value for name, value in fields})
    return rows


def _text_place(chunk: Chunk, quote: str, ocr: OcrSettings, limits: LimitSettings) -> CitedPlace:
    """A deck's slide, a sheet's rows, or a text passage in context, from the original read again."""
    loaded = load_document(Path(chunk.source), limits, ocr.model_copy(update={"engine": "off"}))
    if loaded.content_hash != chunk.doc_id:
        raise LoadError(chunk.source, "the original changed since it was indexed (re-index it to cite the new "
                                      "version)")
    pages = {p.page: p.text for p in loaded.pages}
    if chunk.page not in pages:
        raise LoadError(chunk.source, f"slide {chunk.page} is not in the file (it has {len(loaded.pages)})")
    text = pages[chunk.page]
    span, located = _cited_span(text, chunk, quote)
    if loaded.file_type == "pptx":
        return CitedPlace("text", chunk.source, chunk.page, len(loaded.pages), text=text, span=span, located=located)
    shown, shown_span = _context(text, span)
    if loaded.file_type in ("xlsx", "csv"):
        return CitedPlace("row", chunk.source, text=shown, span=shown_span, rows=_record_rows(text, span),
                          located=located)
    return CitedPlace("text", chunk.source, text=shown, span=shown_span, located=located)


def cited_place(chunk: Chunk, quote: str, ocr: OcrSettings, limits: LimitSettings) -> CitedPlace:
    """Where ``chunk`` stands in its original, with ``quote`` (the cited sentence(s); "": the whole chunk)
    highlighted. Never raises for a bad original: the stored text comes back with a notice instead."""
    file_type = FILE_TYPES.get(Path(chunk.source).suffix.lower())
    cited = quote or chunk.text
    try:
        if file_type == "pdf":
            return _pdf_place(_read_original(chunk, limits), chunk, cited, ocr, limits)
        if file_type == "image":
            return _image_place(_read_original(chunk, limits), chunk, cited, ocr, limits)
        return _text_place(chunk, quote, ocr, limits)
    except LoadError as exc:
        return stored_place(chunk, quote, f"{exc}: showing the indexed text instead")
