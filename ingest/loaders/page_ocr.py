"""One page image to normalised text: recognise, drop low-confidence lines, put the rest in reading order."""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from ingest.chunking.normalize import normalize_text
from ingest.loaders.ocr_engine import OcrEngine, OcrLine
from ingest.loaders.reading_order import reading_order
from ingest.settings import OcrSettings


def ocr_page(image: Image.Image, engine: OcrEngine, settings: OcrSettings) -> str:
    """The text on ``image`` in reading order, lines wrapped by the layout re-joined as for a PDF text layer."""
    return normalize_text("\n".join(reading_order(ocr_lines(image, engine, settings))), pdf_lines=True)


def ocr_lines(image: Image.Image, engine: OcrEngine, settings: OcrSettings) -> list[OcrLine]:
    """The lines recognised on ``image`` with their boxes, the low-confidence ones dropped (what ``ocr_page`` reads
    and what a citation's page highlights)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # A screenshot with a transparent background: converted as is, transparent pixels turn black, and so
        # would black text on them. Put it on white paper first.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    rgb = np.asarray(image.convert("RGB"))
    return [ln for ln in engine.recognise(rgb) if ln.score >= settings.min_confidence and ln.text.strip()]


# Called after each page recognised: (pages done, pages to recognise in this document).
PageProgress = Callable[[int, int], None]


def no_progress(done: int, total: int) -> None:
    """The default ``PageProgress``: report nothing."""
