"""Drawing the cited region on a page image: a semi-transparent fill with an outline, then PNG bytes."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw

# Amber, like the page's <mark> for the cited span: the fill lets the text show through, the outline finds it.
FILL_RGBA = (255, 196, 0, 90)
OUTLINE_RGBA = (230, 120, 0, 255)
OUTLINE_PX = 3
# Two boxes in a row are one printed line when their heights overlap by this share of the smaller, with a gap of
# at most this many line heights (a word space, not a column gutter).
SAME_LINE_OVERLAP = 0.5
MAX_GAP_LINES = 1.5
# Room around the glyphs, in pixels, so the outline does not cut through the letters.
PAD_PX = 3


@dataclass(frozen=True)
class Box:
    """A rectangle in image pixels, origin top-left."""

    x0: float
    y0: float
    x1: float
    y1: float


def _same_line(a: Box, b: Box) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    height = max(min(a.y1 - a.y0, b.y1 - b.y0), 1)
    gap = b.x0 - a.x1
    return overlap >= SAME_LINE_OVERLAP * height and -height <= gap <= MAX_GAP_LINES * height


def merge_lines(boxes: list[Box]) -> list[Box]:
    """Consecutive boxes (characters or words in reading order) joined into one box per printed line."""
    merged: list[Box] = []
    for box in boxes:
        if merged and _same_line(merged[-1], box):
            last = merged[-1]
            merged[-1] = Box(min(last.x0, box.x0), min(last.y0, box.y0), max(last.x1, box.x1), max(last.y1, box.y1))
        else:
            merged.append(box)
    return merged


def draw_highlights(image: Image.Image, boxes: list[Box]) -> Image.Image:
    """``image`` (as RGB) with every box filled and outlined."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for box in boxes:
        rect = (box.x0 - PAD_PX, box.y0 - PAD_PX, box.x1 + PAD_PX, box.y1 + PAD_PX)
        draw.rectangle(rect, fill=FILL_RGBA, outline=OUTLINE_RGBA, width=OUTLINE_PX)
    return Image.alpha_composite(base, layer).convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()
