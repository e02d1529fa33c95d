"""Put OCR lines into reading order: columns first (left column top to bottom, then the right one), then lines.

A column gutter is a vertical strip in the middle of the text area that no line crosses, with wide lines on both
sides (table cells are narrow, so a table is read row by row, not column by column). Lines that cross the gutter
(a title, a full-width paragraph) cut the page into bands; within a band the left column comes before the right.
Boxes at the same height (the cells of a table row, words the detector split) become one line, left to right.
"""

from __future__ import annotations

from statistics import median

from ingest.loaders.ocr_engine import OcrLine

# The gutter is looked for in this middle part of the text area's width ...
GUTTER_SEARCH = (0.3, 0.7)
GUTTER_STEPS = 80
# ... and counts only with this many lines on each side whose median width is at least this share of the area.
MIN_COLUMN_LINES = 3
MIN_COLUMN_WIDTH = 0.25
# Two boxes are on the same line when their vertical centres differ by less than this share of a line height.
SAME_LINE = 0.5


def _rows(lines: list[OcrLine]) -> list[str]:
    """Boxes grouped into visual lines (top to bottom), each read left to right."""
    if not lines:
        return []
    height = median(ln.y1 - ln.y0 for ln in lines) or 1.0
    rows: list[list[OcrLine]] = []
    for ln in sorted(lines, key=lambda b: (b.y0 + b.y1) / 2):
        centre = (ln.y0 + ln.y1) / 2
        if rows:
            last = rows[-1]
            last_centre = sum((b.y0 + b.y1) / 2 for b in last) / len(last)
            if abs(centre - last_centre) < SAME_LINE * height:
                last.append(ln)
                continue
        rows.append([ln])
    return [" ".join(b.text for b in sorted(row, key=lambda b: b.x0)) for row in rows]


def _gutter(lines: list[OcrLine]) -> float | None:
    left_edge, right_edge = min(b.x0 for b in lines), max(b.x1 for b in lines)
    span = right_edge - left_edge
    if span <= 0:
        return None
    lo, hi = GUTTER_SEARCH
    best: tuple[int, float] | None = None
    for step in range(GUTTER_STEPS + 1):
        x = left_edge + span * (lo + (hi - lo) * step / GUTTER_STEPS)
        crossing = sum(1 for b in lines if b.x0 < x < b.x1)
        if best is None or crossing < best[0]:
            best = (crossing, x)
    assert best is not None
    crossing, x = best
    left = [b for b in lines if b.x1 <= x]
    right = [b for b in lines if b.x0 >= x]
    if crossing > len(lines) * 0.2 or len(left) < MIN_COLUMN_LINES or len(right) < MIN_COLUMN_LINES:
        return None
    wide = MIN_COLUMN_WIDTH * span
    if median(b.x1 - b.x0 for b in left) < wide or median(b.x1 - b.x0 for b in right) < wide:
        return None
    return x


def reading_order(lines: list[OcrLine]) -> list[str]:
    """The text of ``lines`` as visual lines in reading order."""
    if not lines:
        return []
    gutter = _gutter(lines)
    if gutter is None:
        return _rows(lines)
    out: list[str] = []
    band: list[OcrLine] = []
    for ln in sorted(lines, key=lambda b: b.y0):
        if ln.x0 < gutter < ln.x1:  # spans both columns: ends the band above it
            out += _rows([b for b in band if b.x1 <= gutter]) + _rows([b for b in band if b.x1 > gutter])
            out += _rows([ln])
            band = []
        else:
            band.append(ln)
    out += _rows([b for b in band if b.x1 <= gutter]) + _rows([b for b in band if b.x1 > gutter])
    return out
