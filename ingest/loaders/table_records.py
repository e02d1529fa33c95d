"""Rows of a table (a sheet, a CSV file) to records that carry their header: ``列名: 值；列名: 值``.

One record per line, so the record chunker (ingest/chunking/record_chunker.py) can keep each row whole and
never cut one row's fields away from its header. The first non-empty row is the header (rows above it holding
one value only, like a merged title, are kept as text lines); empty rows and columns are dropped; a row longer
than the header gets names for its extra cells (a ragged CSV loses nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ingest.chunking.normalize import normalize_text

FIELD_SEPARATOR = "；"
# Characters that would make a record line read as Markdown structure; escaped by their full-width forms.
_LINE_START_ESCAPES = {"#": "＃", "|": "｜", "`": "｀", "~": "～", ">": "＞"}


@dataclass
class TableRecords:
    header: list[str]
    records: list[str]
    ragged_rows: int  # rows with more or fewer cells than the header


def cell_text(value: object) -> str:
    """A cell as one line of text: whole floats without ".0", dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.10g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(normalize_text(str(value)).split())


def _column_name(index: int) -> str:
    return f"列{index + 1}"


def _escape(line: str) -> str:
    return _LINE_START_ESCAPES[line[0]] + line[1:] if line[:1] in _LINE_START_ESCAPES else line


def table_records(rows: list[list[str]]) -> TableRecords:
    """Records from rows of cell texts (already ``cell_text``-ed)."""
    rows = [r for r in rows if any(c for c in r)]
    if not rows:
        return TableRecords([], [], 0)
    titles = []
    # A title above the table (often merged across it, so filled into every column) is text, not the header.
    while len(rows) > 1 and len({c for c in rows[0] if c}) == 1 and len({c for c in rows[1] if c}) > 1:
        titles.append(next(c for c in rows.pop(0) if c))
    width = max(len(r) for r in rows)
    used = [i for i in range(width) if any(i < len(r) and r[i] for r in rows)]
    header_row = rows[0]
    header = [header_row[i] if i < len(header_row) and header_row[i] else _column_name(i) for i in used]
    n_header = len(header_row)
    records, ragged = [_escape(t) for t in titles], 0
    for row in rows[1:]:
        if len(row) != n_header and any(row[n_header:]) or len(row) < n_header:
            ragged += 1
        fields = [f"{name}: {row[i]}" for name, i in zip(header, used) if i < len(row) and row[i]]
        records.append(_escape(FIELD_SEPARATOR.join(fields)))
    if len(rows) == 1:  # a header alone is still content: keep it as one record
        records.append(FIELD_SEPARATOR.join(header))
    return TableRecords(header, records, ragged)


def section_text(heading_marks: str, heading: str, records: list[str]) -> str:
    """A Markdown heading line then one record per line."""
    title = " ".join(heading.split()) or "-"
    return "\n".join([f"{heading_marks} {title}", "", *records])
