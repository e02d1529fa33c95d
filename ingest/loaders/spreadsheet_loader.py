"""Excel .xlsx (openpyxl, read-only streaming) and CSV (stdlib csv) to one Markdown-shaped page:
``# file`` then ``## sheet`` per sheet, each followed by one record per row (see table_records.py).

Formulas are read as the values Excel cached when it last saved the file; merged cells are filled with their
top-left value in every cell they cover; a sheet or file with more rows than ``limits.max_rows`` is refused.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
import zipfile

from lxml import etree

from ingest.loaders.load_error import LoadError
from ingest.loaders.table_records import cell_text, section_text, table_records
from ingest.loaders.text_decoding import decode_text
from ingest.loaders.zip_guard import check_zip_document
from ingest.records import PageText
from ingest.settings import LimitSettings

log = logging.getLogger(__name__)
_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
CSV_DELIMITERS = ",;\t|"
CSV_SNIFF_CHARS = 64 * 1024


def _merged_ranges(archive: zipfile.ZipFile, sheet_path: str) -> list[tuple[int, int, int, int]]:
    """(min_row, min_col, max_row, max_col), 1-based, of the sheet's merged cells (read-only openpyxl does not
    expose them), streamed from the sheet's XML."""
    from openpyxl.utils.cell import range_boundaries

    ranges = []
    with archive.open(sheet_path.lstrip("/")) as fh:
        for _, element in etree.iterparse(fh, events=("end",), tag=_SHEET_NS + "mergeCell",
                                          resolve_entities=False, no_network=True, huge_tree=False):
            ref = element.get("ref") or ""
            element.clear()
            try:
                min_col, min_row, max_col, max_row = range_boundaries(ref)
            except (ValueError, TypeError):
                continue
            ranges.append((min_row, min_col, max_row, max_col))
    return ranges


def _fill_merged(rows: list[list[str]], ranges: list[tuple[int, int, int, int]]) -> None:
    for min_row, min_col, max_row, max_col in ranges:
        if min_row > len(rows):
            continue
        top = rows[min_row - 1]
        value = top[min_col - 1] if min_col - 1 < len(top) else ""
        for r in range(min_row - 1, min(max_row, len(rows))):
            row = rows[r]
            if len(row) < max_col:
                row.extend([""] * (max_col - len(row)))
            for c in range(min_col - 1, max_col):
                if not row[c]:
                    row[c] = value


def read_xlsx(data: bytes, path: str, name: str, limits: LimitSettings) -> tuple[list[PageText], str]:
    """Every worksheet of the workbook as a ``## sheet`` section of records."""
    import openpyxl

    check_zip_document(data, path, ".xlsx", limits)
    sections = [f"# {name}"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about unsupported extensions, data validation...
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            title = (book.properties.title or "").strip() if book.properties else ""
            for sheet in book.worksheets:
                if not hasattr(sheet, "iter_rows"):
                    continue  # a chart sheet
                sheet.reset_dimensions()  # a wrong <dimension> would pad every row to it
                rows: list[list[str]] = []
                for values in sheet.iter_rows(values_only=True):
                    if len(rows) >= limits.max_rows:
                        raise LoadError(path, f"sheet {sheet.title!r} has more than {limits.max_rows} rows "
                                              "(limits.max_rows)")
                    rows.append([cell_text(v) for v in values])
                _fill_merged(rows, _merged_ranges(book._archive, sheet._worksheet_path))
                table = table_records(rows)
                if table.records:
                    sections.append(section_text("##", sheet.title, table.records))
        finally:
            book.close()
    except LoadError:
        raise
    except Exception as exc:  # openpyxl, zipfile and lxml raise many types on broken files
        raise LoadError(path, f"not a valid .xlsx file ({type(exc).__name__}: {exc})") from exc
    if len(sections) == 1:
        raise LoadError(path, "no cell values in any sheet")
    return [PageText(text="\n\n".join(sections), page=None)], title


def read_csv(data: bytes, path: str, name: str, limits: LimitSettings) -> tuple[list[PageText], str]:
    """A CSV/TSV file, decoded like a text file (GBK, UTF-8 with BOM ...), as one section of records."""
    text, _ = decode_text(data, path)
    sample = text[:CSV_SNIFF_CHARS]
    default = "\t" if path.lower().endswith(".tsv") else ","
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS)
    except csv.Error:
        dialect = csv.excel_tab if default == "\t" else csv.excel
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), dialect):
            if len(rows) > limits.max_rows:
                raise LoadError(path, f"more than {limits.max_rows} rows (limits.max_rows)")
            rows.append([cell_text(c) for c in row])
    except csv.Error as exc:
        raise LoadError(path, f"malformed CSV at line {len(rows) + 1}: {exc}") from exc
    table = table_records(rows)
    if not table.records:
        raise LoadError(path, "no values in the CSV file")
    if table.ragged_rows:
        log.warning("%s: %d row(s) have a different number of cells than the header (kept; extra cells named 列N)",
                    path, table.ragged_rows)
    return [PageText(text=section_text("#", name, table.records), page=None)], ""
