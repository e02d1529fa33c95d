"""Word .docx to Markdown-shaped text with python-docx: headings become ``#`` lines, tables Markdown tables,
so the chunker sees the same structure as in a Markdown file."""

from __future__ import annotations

import io
import re

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.chunking.normalize import normalize_text
from ingest.loaders.load_error import LoadError

_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def _paragraph_markdown(par: Paragraph) -> str:
    text = par.text.strip()
    if not text:
        return ""
    style = par.style.name if par.style is not None else ""
    match = _HEADING_STYLE.match(style)
    if match:
        return "#" * int(match.group(1)) + " " + text
    if style == "Title":
        return "# " + text
    if style.startswith("List"):
        return "- " + text
    return text


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table_markdown(table: Table) -> str:
    rows = ["| " + " | ".join(_cell(c.text) for c in row.cells) + " |" for row in table.rows]
    if not rows:
        return ""
    n_cols = len(table.rows[0].cells)
    return "\n".join([rows[0], "|" + " --- |" * n_cols, *rows[1:]])


def read_docx(data: bytes, path: str) -> tuple[str, str]:
    """Return ``(normalised text, title)``; the title is the document property or the first heading."""
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = [_table_markdown(b) if isinstance(b, Table) else _paragraph_markdown(b)
                  for b in document.iter_inner_content()]
        title = (document.core_properties.title or "").strip()
    except Exception as exc:  # zipfile, lxml and python-docx all raise their own types on a broken file
        hint = " (password-protected, or an old .doc renamed?)" if "zip" in str(exc).lower() else ""
        raise LoadError(path, f"not a valid .docx file{hint} ({type(exc).__name__}: {exc})") from exc
    text = normalize_text("\n\n".join(b for b in blocks if b))
    if not title:
        title = next((b.lstrip("# ") for b in blocks if b.startswith("#")), "")
    return text, title
