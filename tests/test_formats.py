"""Spreadsheets, CSV, slides, images and scanned PDFs: generated files of each type and each kind of bad input.

Fast tests need no OCR models (bounds are checked before any recognition); the OCR end-to-end tests run the real
RapidOCR models and are marked slow.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from store_fakes import store_settings

from ingest.chunking.chunker import chunk_document
from ingest.loaders.document_loader import (
    SUPPORTED_EXTENSIONS,
    LoadError,
    load_document,
)
from ingest.loaders.ocr_engine import OcrLine, installed_engine
from ingest.loaders.reading_order import reading_order
from ingest.settings import ChunkingSettings, LimitSettings, OcrSettings
from ingest.testing.fake_embedder import FakeEmbedder

LIMITS = LimitSettings()
OCR_OFF = OcrSettings(engine="off")
needs_ocr = pytest.mark.skipif(installed_engine(OcrSettings()) is None, reason="the 'ocr' extra is not installed")


def _reason(path: Path, limits: LimitSettings = LIMITS, ocr: OcrSettings = OCR_OFF) -> str:
    with pytest.raises(LoadError) as err:
        load_document(path, limits, ocr)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    return err.value.reason


def _workbook(path: Path, rows: int = 30) -> Path:
    """Two sheets written by XlsxWriter (which stores formulas' cached values, as Excel does), with a merged
    cell, an empty row and an empty column."""
    import xlsxwriter
    book = xlsxwriter.Workbook(str(path))
    orders = book.add_worksheet("订单")
    for col, name in enumerate(["订单号", "客户", "", "金额", "合计"]):
        if name:
            orders.write(0, col, name)
    for i in range(rows):
        r = i + 1 if i < 5 else i + 2  # row 7 stays empty
        orders.write(r, 0, f"A{1000 + i}")
        orders.write(r, 1, f"客户{i}")
        orders.write_number(r, 3, 100 + i)
        orders.write_formula(r, 4, f"=D{r + 1}*2", None, (100 + i) * 2)
    staff = book.add_worksheet("人员")
    staff.write_row(0, 0, ["部门", "姓名", "电话"])
    staff.merge_range(1, 0, 2, 0, "研发部")
    staff.write_row(1, 1, ["王伟", "1381"])
    staff.write_row(2, 1, ["李娜", "1392"])
    book.close()
    return path


# --- spreadsheets ---------------------------------------------------------------------------------------------

def test_xlsx_sheets_become_sections_of_records_with_header(tmp_path):
    doc = load_document(_workbook(tmp_path / "book.xlsx"), LIMITS)
    text = doc.pages[0].text
    assert "## 订单" in text and "## 人员" in text
    assert "订单号: A1003；客户: 客户3；金额: 103；合计: 206" in text  # formula read as its cached value
    assert "部门: 研发部；姓名: 李娜；电话: 1392" in text  # merged cell filled in every row it covers
    assert "列3" not in text and "\n\n\n" not in text  # empty column and empty row skipped


def test_record_chunks_keep_each_row_whole_with_sheet_and_header(tmp_path):
    doc = load_document(_workbook(tmp_path / "book.xlsx", rows=200), LIMITS)
    drafts = chunk_document(doc, ChunkingSettings(chunk_size=200))
    assert len(drafts) > 10
    page = doc.pages[0].text
    for d in drafts:
        assert d.text.endswith(page[d.char_start:d.char_end])
        assert len(d.text) <= 200
        assert d.heading_path[0] == "book.xlsx" and d.text.startswith("book.xlsx > ")
        for line in d.text.split("\n")[1:]:  # whole records only: every line starts with its first column
            assert line.startswith(("订单号: ", "部门: "))
    row = [d for d in drafts if "A1150；" in d.text]
    assert len(row) == 1 and row[0].heading_path == ["book.xlsx", "订单"] and "金额: 250" in row[0].text


def test_a_record_longer_than_a_chunk_is_cut_between_fields_repeating_its_key(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("编号,说明一,说明二,说明三\nK-7," + ",".join(["很长的说明" * 12] * 3) + "\n", encoding="utf-8")
    drafts = chunk_document(load_document(path, LIMITS), ChunkingSettings(chunk_size=120))
    assert len(drafts) >= 3
    assert all("编号: K-7" in d.text for d in drafts)
    assert all(len(d.text) <= 120 for d in drafts)


def test_a_merged_title_row_above_the_header_is_text_not_the_header(tmp_path):
    import xlsxwriter
    path = tmp_path / "report.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("汇总")
    sheet.merge_range(0, 0, 0, 2, "2024年销售报表")
    sheet.write_row(1, 0, ["地区", "销量", "负责人"])
    sheet.write_row(2, 0, ["华东", 820, "王伟"])
    book.close()
    text = load_document(path, LIMITS).pages[0].text
    assert "2024年销售报表\n地区: 华东；销量: 820；负责人: 王伟" in text


def test_xlsx_over_the_row_limit(tmp_path):
    reason = _reason(_workbook(tmp_path / "big.xlsx", rows=50), LimitSettings(max_rows=20))
    assert "more than 20 rows" in reason and "limits.max_rows" in reason


def test_password_protected_xlsx(tmp_path):
    path = tmp_path / "secret.xlsx"  # what Excel writes with a password: an OLE container, not a zip
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4000)
    assert "password-protected" in _reason(path)


def _zip_bomb(path: Path, member: str, mb: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open(member, "w") as fh:
            block = b"<c>0</c>" * (1024 * 128)
            for _ in range(mb):
                fh.write(block)
    return path


@pytest.mark.parametrize("suffix,member", [(".xlsx", "xl/worksheets/sheet1.xml"), (".docx", "word/document.xml"),
                                           (".pptx", "ppt/slides/slide1.xml")])
def test_zip_bombs_stop_at_the_decompressed_limit(tmp_path, suffix, member):
    path = _zip_bomb(tmp_path / f"bomb{suffix}", member, mb=12)
    assert path.stat().st_size < 200_000
    reason = _reason(path, LimitSettings(max_unzipped_mb=10))
    assert "over the limit of 10 MB" in reason and "zip bomb" in reason


def test_corrupt_xlsx(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(_workbook(tmp_path / "ok.xlsx").read_bytes()[:3000])
    assert "not a valid .xlsx" in _reason(path)


# --- CSV ------------------------------------------------------------------------------------------------------

def test_csv_in_gbk(tmp_path):
    path = tmp_path / "名单.csv"
    path.write_bytes("姓名,城市,电话\n张三,杭州,0571\n李四,成都,028\n".encode("gbk"))
    doc = load_document(path, LIMITS)
    assert "姓名: 李四；城市: 成都；电话: 028" in doc.pages[0].text
    assert chunk_document(doc, ChunkingSettings())[0].heading_path == ["名单.csv"]


def test_csv_with_ragged_rows_keeps_every_cell(tmp_path, caplog):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n4,5,6\n", encoding="utf-8")
    text = load_document(path, LIMITS).pages[0].text
    assert "a: 1；b: 2" in text and "a: 3" in text and "a: 4；b: 5；列3: 6" in text
    assert "ragged.csv: 2 row(s) have a different number of cells" in caplog.text


def test_csv_semicolons_and_quoted_newlines(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text('name;note\n"x";"two\nlines"\n"y";"#1 hit"\n', encoding="utf-8")
    text = load_document(path, LIMITS).pages[0].text
    assert "name: x；note: two lines" in text and "name: y；note: #1 hit" in text


def test_csv_that_is_binary(tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert "binary file" in _reason(path)


# --- slides ---------------------------------------------------------------------------------------------------

def _deck(path: Path, with_text: bool = True) -> Path:
    from PIL import Image
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    picture = io.BytesIO()
    Image.new("RGB", (40, 40), "red").save(picture, "PNG")
    for number in range(1, 4):
        slide = deck.slides.add_slide(deck.slide_layouts[5 if with_text else 6])
        if with_text:
            slide.shapes.title.text = f"第{number}章 季度总结"
            box = slide.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1))
            box.text_frame.text = f"第{number}季度收入增长{number * 7}%。"
            if number == 2:
                table = slide.shapes.add_table(2, 2, Inches(1), Inches(3), Inches(4), Inches(1)).table
                for (r, c), value in {(0, 0): "地区", (0, 1): "销量", (1, 0): "华东", (1, 1): "820"}.items():
                    table.cell(r, c).text = value
            slide.notes_slide.notes_text_frame.text = f"提醒听众第{number}页的数据来源。"
        picture.seek(0)
        slide.shapes.add_picture(picture, Inches(7), Inches(5))
    deck.save(str(path))
    return path


def test_pptx_slide_per_page_with_title_body_table_and_notes(tmp_path):
    doc = load_document(_deck(tmp_path / "deck.pptx"), LIMITS)
    assert [p.page for p in doc.pages] == [1, 2, 3]
    second = doc.pages[1].text
    assert second.startswith("# 第2章季度总结")
    assert "第2季度收入增长14%。" in second and "| 华东 | 820 |" in second and "备注：提醒听众第2页" in second
    drafts = chunk_document(doc, ChunkingSettings())
    assert {d.page for d in drafts} == {1, 2, 3}
    assert all(d.heading_path == [f"第{d.page}章季度总结"] for d in drafts)


def test_pptx_with_only_pictures(tmp_path):
    assert "no text in 3 slide(s) (only pictures?" in _reason(_deck(tmp_path / "pics.pptx", with_text=False))


def test_pptx_over_the_page_limit(tmp_path):
    assert "3 slides, over the limit of 2" in _reason(_deck(tmp_path / "d.pptx"), LimitSettings(max_pages=2))


# --- images and scanned PDFs (bounds: no OCR needed) ----------------------------------------------------------

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_image_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"  # a header claiming 100,000 x 100,000 pixels over a few bytes of data
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b""))
    reason = _reason(path, ocr=OcrSettings())
    assert "too large" in reason or "limits.max_image_pixels" in reason


def test_image_over_the_pixel_limit(tmp_path):
    from PIL import Image
    path = tmp_path / "big.jpg"
    Image.new("RGB", (200, 100), "white").save(path)
    assert "200x100" in _reason(path, LimitSettings(max_image_pixels=10_000), OcrSettings())


@pytest.mark.parametrize("name", ["broken.png", "broken.jpg", "broken.webp", "broken.tiff"])
def test_corrupt_image(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not an image at all" * 10)
    assert "not a readable image" in _reason(path, ocr=OcrSettings())


def test_truncated_image(tmp_path):
    from PIL import Image
    buf = io.BytesIO()
    Image.effect_noise((300, 300), 50).convert("RGB").save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    if installed_engine(OcrSettings()) is None:
        pytest.skip("needs an OCR engine to get as far as decoding")
    assert "corrupt image data" in _reason(path, ocr=OcrSettings())


def test_image_without_ocr_gets_a_clear_reason(tmp_path):
    from PIL import Image
    path = tmp_path / "scan.png"
    Image.new("RGB", (50, 50), "white").save(path)
    assert "needs OCR" in _reason(path) and "OCR is off" in _reason(path)


def _blank_pdf(path: Path, pages: int) -> Path:
    from pypdf import PdfWriter
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


@needs_ocr
def test_thousand_page_scan_stops_at_the_ocr_page_limit(tmp_path):
    from PIL import Image

    from ingest.testing.scanned_pages import image_pdf
    pages = [Image.new("RGB", (30, 40), "white")] * 1000
    reason = _reason(image_pdf(pages, tmp_path / "scan.pdf", 10), ocr=OcrSettings())
    assert "1000 scanned page(s) need OCR, over the limit of 300" in reason


@needs_ocr
def test_blank_pages_of_a_text_pdf_are_not_sent_to_ocr(tmp_path):
    """Thin pages without an image (blank, title only) keep their text without rendering or OCR."""
    calls = []
    doc_path = _blank_pdf(tmp_path / "blank.pdf", 400)
    with pytest.raises(LoadError, match="no extractable text in 400 page"):
        load_document(doc_path, LIMITS, OcrSettings(), on_page=lambda d, t: calls.append(d))
    assert calls == []


def test_pdf_over_the_page_limit(tmp_path):
    assert "over the limit of 5 (limits.max_pages)" in _reason(_blank_pdf(tmp_path / "p.pdf", 6),
                                                                LimitSettings(max_pages=5))


def test_scanned_pdf_without_ocr_keeps_todays_reason(tmp_path):
    assert "no extractable text in 3 page(s) (scanned?)" in _reason(_blank_pdf(tmp_path / "s.pdf", 3))


# --- reading order ---------------------------------------------------------------------------------------------

def _line(text: str, x0: float, y0: float, x1: float, h: float = 20) -> OcrLine:
    return OcrLine(text, 0.99, x0, y0, x1, y0 + h)


def test_reading_order_two_columns_then_a_full_width_line():
    lines = [_line("标题横跨两栏", 100, 50, 1000)]
    lines += [_line(f"右{i}", 600, 100 + 40 * i, 1000) for i in range(4)]
    lines += [_line(f"左{i}", 100, 100 + 40 * i, 500) for i in range(4)]
    lines += [_line("页脚横跨两栏", 100, 400, 1000)]
    assert reading_order(lines) == ["标题横跨两栏", "左0", "左1", "左2", "左3", "右0", "右1", "右2", "右3",
                                    "页脚横跨两栏"]


def test_reading_order_table_rows_stay_rows():
    lines = [_line(cell, x, 100 + 40 * r, x + 80) for r in range(5)
             for cell, x in ((f"编号{r}", 100), (f"城市{r}", 400), (f"人{r}", 700))]
    assert reading_order(lines) == [f"编号{r} 城市{r} 人{r}" for r in range(5)]


# --- the entry points accept the new types --------------------------------------------------------------------

def test_new_types_are_supported():
    assert {".xlsx", ".csv", ".pptx", ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} <= SUPPORTED_EXTENSIONS


def test_ingest_of_a_folder_with_bad_files_loses_nothing_else(tmp_path):
    from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
    docs = tmp_path / "docs"
    docs.mkdir()
    _workbook(docs / "book.xlsx")
    _deck(docs / "deck.pptx")
    (docs / "名单.csv").write_bytes("姓名,城市\n张三,杭州\n".encode("gbk"))
    (docs / "bad.png").write_bytes(b"not an image")
    _zip_bomb(docs / "bomb.xlsx", "xl/worksheets/sheet1.xml", mb=3)
    settings = store_settings(tmp_path)
    settings.limits = LimitSettings(max_unzipped_mb=2)
    settings.ocr = OCR_OFF
    report = run_ingest(settings, [docs], IngestOptions(), embedder_factory=FakeEmbedder)
    assert report.files_added == 3, report.summary()
    failed = {Path(f.path).name: f.reason for f in report.failures}
    assert set(failed) == {"bad.png", "bomb.xlsx"}


# --- OCR end to end with the real models (slow) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def scanned_pages():
    from ingest.testing.scanned_pages import make_pages
    return make_pages(3, seed=11)


@pytest.mark.slow
@needs_ocr
def test_ocr_image_end_to_end(tmp_path, scanned_pages):
    from ingest.testing.scanned_pages import at_dpi, char_accuracy
    page = scanned_pages[0]
    path = tmp_path / "page.png"
    at_dpi(page.image, 200).save(path)
    doc = load_document(path, LIMITS, OcrSettings())
    assert doc.file_type == "image" and doc.pages[0].page is None
    assert char_accuracy(page.text, doc.pages[0].text) > 0.9
    assert page.questions[0].answer in doc.pages[0].text


@pytest.mark.slow
@needs_ocr
def test_ocr_only_the_scanned_pages_of_a_pdf(tmp_path, scanned_pages):
    """Page 1 has a text layer and keeps it; page 2 is an image and is recognised; progress is per OCR page."""
    from pypdf import PdfReader, PdfWriter

    from ingest.testing.scanned_pages import at_dpi, image_pdf
    scan = image_pdf([at_dpi(scanned_pages[1].image, 200)], tmp_path / "scan.pdf", 200)
    writer = PdfWriter()
    writer.append(PdfReader(_text_layer_pdf(tmp_path / "layer.pdf")))
    writer.append(PdfReader(scan))
    text_pdf = tmp_path / "mixed.pdf"
    with open(text_pdf, "wb") as fh:
        writer.write(fh)
    calls = []
    doc = load_document(text_pdf, LIMITS, OcrSettings(), on_page=lambda done, total: calls.append((done, total)))
    assert [p.page for p in doc.pages] == [1, 2]
    assert "typed text layer" in doc.pages[0].text
    assert scanned_pages[1].questions[0].answer in doc.pages[1].text
    assert calls == [(1, 1)]


def _text_layer_pdf(path: Path) -> Path:
    """A one-page PDF with a real text layer (drawn by pypdf's own content stream)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
        {NameObject("/F1"): writer._add_object(font)})})
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 14 Tf 72 760 Td (This page has a typed text layer, long enough to keep.) Tj ET")
    page[NameObject("/Contents")] = writer._add_object(stream)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def test_slides_are_cited_as_slides_and_pdf_pages_as_pages() -> None:
    from ingest.records import Chunk
    from prompts.templates import source_label
    from retrieval.results import ScoredChunk

    slide = Chunk(chunk_id=1, doc_id="d", source="/docs/季度汇报.pptx", text="…", ordinal=0, page=3,
                  heading_path=["营收"])
    page = Chunk(chunk_id=2, doc_id="d", source="/docs/手册.pdf", text="…", ordinal=0, page=3)
    sheet = Chunk(chunk_id=3, doc_id="d", source="/docs/名单.xlsx", text="…", ordinal=0, heading_path=["名单.xlsx", "员工"])
    assert (slide.page_label, page.page_label, sheet.page_label) == ("slide 3", "p.3", "")
    assert source_label(ScoredChunk(chunk=slide)) == "季度汇报.pptx slide 3 — 营收"
    assert source_label(ScoredChunk(chunk=sheet)) == "名单.xlsx — 名单.xlsx > 员工"
