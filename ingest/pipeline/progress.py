"""How far an ingest has got, for any face: one small event type and a callback that receives it.

The run reports each phase as it goes (``IngestOptions.progress``): the terminal draws tqdm bars
(``TerminalProgress``), the chat page a progress bar, the HTTP server could send events. The run itself prints
nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

# Phases in the order a run reports them ("save" comes from uploads, before the run).
SAVE, LOAD, OCR, EMBED, COMMIT = "save", "load", "ocr", "embed", "commit"


@dataclass(frozen=True)
class IngestProgress:
    """``done`` of ``total`` items of ``phase``: files saved or loaded, pages recognised, passages embedded,
    generations committed; ``file`` is the file being saved, loaded or recognised ("" for the others)."""

    phase: str
    done: int
    total: int
    file: str = ""


ProgressCallback = Callable[[IngestProgress], None]

# How each phase appears on the terminal: (label, unit, whether the bar stays once the phase is done).
_BARS = {SAVE: ("saving", "file", True), LOAD: ("loading", "file", True), OCR: ("OCR", "page", False),
         EMBED: ("embedding", "passage", True), COMMIT: ("writing", "generation", False)}


class TerminalProgress:
    """A ``ProgressCallback`` drawing one tqdm bar per phase on stderr (per file for OCR)."""

    def __init__(self) -> None:
        self._bars: dict[tuple[str, str], tqdm] = {}

    def __call__(self, event: IngestProgress) -> None:
        label, unit, leave = _BARS.get(event.phase, (event.phase, "item", True))
        key = (event.phase, event.file if event.phase == OCR else "")
        bar = self._bars.get(key)
        if bar is None:
            desc = f"{label} {Path(event.file).name}" if event.phase == OCR else label
            bar = self._bars[key] = tqdm(total=event.total, desc=desc, unit=unit, file=sys.stderr, leave=leave)
        bar.total = event.total
        bar.update(event.done - bar.n)
        if event.done >= event.total:
            bar.close()
            del self._bars[key]
