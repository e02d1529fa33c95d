"""Chunks of table records (spreadsheet and CSV rows, one ``列名: 值；列名: 值`` record per line).

A record is never split while it fits a chunk, so a question about one row finds the whole row with its column
names. Records are packed in order up to ``chunk_size`` (no overlap: a neighbouring row is not context). Every
chunk's text starts with its heading path (``file > sheet``) on a line of its own, so the sheet's name is
embedded and searchable with each chunk. A record longer than a chunk is cut between fields; each later piece
repeats the record's first field (its key, usually), so no piece is a bare value without its row.

Offsets follow the chunker's contract: ``text.endswith(page_text[char_start:char_end])``.
"""

from __future__ import annotations

import re

from ingest.chunking.text_structure import hard_split
from ingest.records import ChunkDraft, LoadedDocument
from ingest.settings import ChunkingSettings

_HEADING = re.compile(r"^(#{1,6}) (.+)$")
FIELD_SEPARATOR = "；"


def _record_pieces(text: str, start: int, end: int, budget: int) -> list[tuple[int, int, str]]:
    """(start, end, extra prefix) pieces of one over-long record, cut after field separators."""
    first_sep = text.find(FIELD_SEPARATOR, start, end)
    key = text[start:first_sep] if 0 <= first_sep - start <= budget // 3 else ""
    pieces: list[tuple[int, int, str]] = []
    pos = start
    while pos < end:
        room = budget - (len(key) + 1 if pieces and key else 0)
        if end - pos <= room:
            pieces.append((pos, end, key if pieces else ""))
            break
        cut = text.rfind(FIELD_SEPARATOR, pos, pos + room)
        if cut <= pos:
            spans = hard_split(text, pos, end, room)
            s, e = spans[0]
            pieces.append((s, e, key if pieces else ""))
            pos = e
        else:
            pieces.append((pos, cut + 1, key if pieces else ""))
            pos = cut + 1
    return pieces


def chunk_records(doc: LoadedDocument, settings: ChunkingSettings) -> list[ChunkDraft]:
    """Chunks of a document whose non-heading lines are records."""
    drafts: list[ChunkDraft] = []
    for page in doc.pages:
        text = page.text
        stack: list[tuple[int, str]] = []
        group: list[tuple[int, int]] = []

        def prefix() -> str:
            return " > ".join(title for _, title in stack)

        def emit(start: int, end: int, head: str) -> None:
            drafts.append(ChunkDraft(text=f"{head}\n{text[start:end]}" if head else text[start:end],
                                     page=page.page, heading_path=[t for _, t in stack], char_start=start,
                                     char_end=end, ordinal=len(drafts)))

        def flush() -> None:
            if group:
                emit(group[0][0], group[-1][1], prefix())
                group.clear()

        pos = 0
        for line in text.split("\n"):
            start, end = pos, pos + len(line)
            pos = end + 1
            if not line.strip():
                continue
            heading = _HEADING.match(line)
            if heading:
                flush()
                level = len(heading.group(1))
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, heading.group(2).strip()))
                continue
            budget = settings.chunk_size - len(prefix()) - 1
            if group and end - group[0][0] > budget:
                flush()
            if end - start > budget:
                for s, e, key in _record_pieces(text, start, end, max(budget, 1)):
                    emit(s, e, "\n".join(p for p in (prefix(), key) if p))
                continue
            group.append((start, end))
        flush()
    return drafts
