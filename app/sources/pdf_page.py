"""A PDF page rendered with pdfium, and the boxes of a cited text on it from the page's text layer.

The stored chunk offsets index pypdf's normalised page text, not pdfium's: the cited text is located in pdfium's
text by ``text_match.locate`` (robust to line breaks, spacing and NFKC), near where the chunk itself sits, and
pdfium turns the matched character range into one rectangle per printed line (``FPDFText_CountRects``).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import pypdfium2
import pypdfium2.raw as pdfium_c
from PIL import Image

from app.sources.highlight import Box, merge_lines
from app.sources.text_match import locate
from ingest.loaders.load_error import LoadError

POINTS_PER_INCH = 72


@dataclass
class PdfText:
    """The text layer of one page: ``text[i]`` is pdfium's character ``i``."""

    text: str
    textpage: pypdfium2.PdfTextPage


def open_pdf(data: bytes, path: str) -> pypdfium2.PdfDocument:
    """The PDF in ``data``; LoadError saying it is encrypted or damaged."""
    try:
        return pypdfium2.PdfDocument(data, password="")
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise LoadError(path, "cannot open the PDF: it is encrypted (a password is required)") from None
        raise LoadError(path, f"cannot open the PDF: it is damaged ({exc})") from None


def get_page(document: pypdfium2.PdfDocument, number: int, path: str) -> pypdfium2.PdfPage:
    """Page ``number`` (1-based); LoadError when the document has no such page or it is damaged."""
    if not 1 <= number <= len(document):
        raise LoadError(path, f"page {number} is not in the file (it has {len(document)} page(s))")
    try:
        return document[number - 1]
    except pypdfium2.PdfiumError as exc:
        raise LoadError(path, f"page {number} is damaged ({exc})") from None


def page_text(page: pypdfium2.PdfPage) -> PdfText:
    textpage = page.get_textpage()
    count = textpage.count_chars()
    text = textpage.get_text_range() if count else ""
    if len(text) != count:
        # get_text_range can merge or expand characters (surrogate pairs, ligatures); character by character the
        # indices are pdfium's own, which is what the boxes need.
        text = "".join(chr(pdfium_c.FPDFText_GetUnicode(textpage, i) or 0xFFFD) for i in range(count))
    return PdfText(text, textpage)


def has_image(page: pypdfium2.PdfPage) -> bool:
    """Whether the page holds an image: only then can a page with little text be a scan the ingest read by OCR."""
    return next(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)), None) is not None


def render(page: pypdfium2.PdfPage, dpi: float, max_pixels: int) -> tuple[Image.Image, float]:
    """The page as an image at ``dpi`` (lower if it would exceed ``max_pixels``) and the scale used (pixels per
    PDF point)."""
    width, height = page.get_size()
    scale = dpi / POINTS_PER_INCH
    pixels = width * scale * height * scale
    if pixels > max_pixels:
        scale *= (max_pixels / pixels) ** 0.5
    return page.render(scale=scale).to_pil(), scale


def cited_spans(layer: PdfText, cited: str, chunk_text: str) -> list[tuple[int, int]]:
    """Character spans of ``cited`` in the page's text layer, looked for first where ``chunk_text`` (the cited
    chunk, which holds it) is printed, so a sentence printed twice is highlighted where the passage is."""
    region = locate(chunk_text, layer.text) if chunk_text else []
    if region:
        start, end = region[0][0], region[-1][1]
        inside = locate(cited, layer.text[start:end])
        if inside:
            return [(start + a, start + b) for a, b in inside]
    return locate(cited, layer.text, near=region[0][0] if region else None)


def _to_pixels(page: pypdfium2.PdfPage, size: tuple[int, int], x: float, y: float) -> tuple[int, int]:
    """A point in PDF page space to the pixels of a ``size`` render; pdfium applies the page's rotation and crop
    box offset exactly as it did when rendering."""
    dx, dy = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(page, 0, 0, size[0], size[1], 0, x, y, dx, dy)
    return dx.value, dy.value


def span_boxes(page: pypdfium2.PdfPage, layer: PdfText, spans: list[tuple[int, int]],
               size: tuple[int, int]) -> list[Box]:
    """One box per printed line of the spans, in the pixels of a render of ``size`` (origin top-left)."""
    boxes = []
    for start, end in spans:
        for i in range(layer.textpage.count_rects(start, end - start)):
            left, bottom, right, top = layer.textpage.get_rect(i)
            xs, ys = zip(_to_pixels(page, size, left, bottom), _to_pixels(page, size, right, top))
            boxes.append(Box(min(xs), min(ys), max(xs), max(ys)))
    return merge_lines(boxes)
