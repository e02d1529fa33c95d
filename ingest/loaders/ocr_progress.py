"""Progress of OCR page by page: a tqdm bar per document that needs OCR, opened at its first page."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from ingest.loaders.page_ocr import PageProgress, no_progress


def ocr_progress(path: str, enabled: bool) -> PageProgress:
    """A ``PageProgress`` drawing "OCR <file>: n/total pages" on stderr, or nothing when not ``enabled``."""
    if not enabled:
        return no_progress
    bar: list[tqdm] = []

    def on_page(done: int, total: int) -> None:
        if not bar:
            bar.append(tqdm(total=total, desc=f"OCR {Path(path).name}", unit="page", file=sys.stderr, leave=False))
        bar[0].update(done - bar[0].n)
        if done >= total:
            bar[0].close()

    return on_page
