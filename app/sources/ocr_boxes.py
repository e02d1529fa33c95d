"""Where a cited text lies on a page read by OCR: the page is recognised again on demand (cached), and the lines
holding the cited text are the highlight.

The ingest stores OCR'd text, not its boxes; recognising one page again when a citation is opened (about a second
on two cores) keeps the knowledge base's format unchanged, and the cache makes opening it again free. The same
engine, settings and confidence filter as the ingest read the same text, so the cited sentence is found.
"""

from __future__ import annotations

import difflib
import threading
from collections import OrderedDict

from PIL import Image

from app.sources.highlight import Box
from app.sources.text_match import MIN_BLOCK, fold
from ingest.loaders.ocr_engine import OcrLine, load_ocr_engine
from ingest.loaders.page_ocr import ocr_lines
from ingest.settings import OcrSettings

# Pages whose recognised lines are kept (a page's lines are a few kilobytes).
CACHED_PAGES = 32
# A line belongs to the cited text when this share of it (folded) is inside the cited text: a shorter overlap is
# a common word, not the same line.
MIN_LINE_SHARE = 0.5

_cache: OrderedDict[tuple[str, int, int], list[OcrLine]] = OrderedDict()
_lock = threading.Lock()


def recognised_lines(key: tuple[str, int, int], image: Image.Image, ocr: OcrSettings) -> list[OcrLine]:
    """The lines OCR finds on ``image``, cached under ``key`` (content hash, page, dpi). Raises ``OcrUnavailable``
    when no engine is installed or OCR is off."""
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    lines = ocr_lines(image, load_ocr_engine(ocr), ocr)
    with _lock:
        _cache[key] = lines
        while len(_cache) > CACHED_PAGES:
            _cache.popitem(last=False)
    return lines


def _line_part(line: OcrLine, cited: str) -> Box | None:
    """The part of ``line`` inside the cited text, its x range interpolated over the line's characters."""
    folded = fold(line.text)
    if not folded.text:
        return None
    match = difflib.SequenceMatcher(None, folded.text, cited, autojunk=False).find_longest_match(
        0, len(folded.text), 0, len(cited))
    # A line shorter than MIN_BLOCK ("in", a page number) shares its few characters with most sentences.
    if match.size < min(MIN_BLOCK, len(cited)) or match.size < MIN_LINE_SHARE * len(folded.text):
        return None
    n = max(len(line.text), 1)
    first, last = folded.origin[match.a], folded.origin[match.a + match.size - 1] + 1
    width = line.x1 - line.x0
    return Box(line.x0 + width * first / n, line.y0, line.x0 + width * last / n, line.y1)


def cited_line_boxes(lines: list[OcrLine], cited: str) -> list[Box]:
    """Boxes of the recognised lines (or parts of lines) that hold ``cited``, in the image's pixels."""
    needle = fold(cited).text
    if not needle:
        return []
    return [box for line in lines if (box := _line_part(line, needle)) is not None]
