"""The cited place on the original (app/sources/): finding the cited text on a page whose text was extracted
differently, its boxes on real PDFs (English, generated; Chinese, Chromium-printed), the highlight drawn into the
page image, and every kind of original (deck, sheet, text) with the bad ones (moved, changed, encrypted,
garbled, page out of range) answered with the stored text and one line."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pptx
import pytest
from PIL import Image

from app.sources.cited_place import cited_place
from app.sources.highlight import FILL_RGBA, OUTLINE_RGBA, Box, merge_lines
from app.sources.ocr_boxes import cited_line_boxes
from app.sources.pdf_page import cited_spans, get_page, open_pdf, page_text, render, span_boxes
from app.sources.text_match import fold, locate
from ingest.loaders.document_loader import load_document
from ingest.loaders.ocr_engine import OcrLine
from ingest.records import Chunk
from ingest.settings import LimitSettings, OcrSettings
from ingest.testing.documents import SAMPLE_DIR, pdf_bytes

LIMITS = LimitSettings()
# The generated PDFs are text PDFs: no test here needs an OCR engine except the one that says so.
NO_OCR = OcrSettings(engine="off")
ZH_PDF = SAMPLE_DIR / "tokenizer_notes.pdf"
ZH_CITED = "分词方式决定了同样一段话要占用多少 token，也就间接决定了上下文窗口能装下多少内容。"
EN_LINES = ["Harbour rules for the night shift.", "The east gate closes at nine in the evening.",
            "Visitors sign the book at the desk."]


def _chunk(path: Path, text: str, page: int | None = None, start: int = 0) -> Chunk:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Chunk(chunk_id=7, doc_id=digest, source=str(path), text=text, ordinal=0, page=page, char_start=start,
                 char_end=start + len(text))


def _boxes_for(data: bytes, number: int, cited: str, chunk_text: str = "") -> tuple[list[Box], str, tuple]:
    document = open_pdf(data, "test.pdf")
    page = get_page(document, number, "test.pdf")
    layer = page_text(page)
    image, _ = render(page, 144, LIMITS.max_image_pixels)
    spans = cited_spans(layer, cited, chunk_text)
    marked = "".join(layer.text[a:b] for a, b in spans)
    return span_boxes(page, layer, spans, image.size), marked, image.size


# -- finding the cited text ------------------------------------------------------------------------------------

def test_locate_ignores_line_breaks_spacing_and_width():
    page = "分词方式决定了同样一段话要占用多少 token，\r\n也就间接决定了上下文窗口能装下多少内容。"
    [(a, b)] = locate("占用多少token,也就间接决定", page)
    assert page[a:b] == "占用多少 token，\r\n也就间接决定"


def test_locate_prefers_the_occurrence_near_the_hint():
    page = "The gate closes at nine. Other text here. The gate closes at nine."
    assert locate("the gate closes at nine", page, near=40) == [(42, 65)]
    assert locate("the gate closes at nine", page) == [(0, 23)]


def test_locate_fuzzy_match_and_no_match():
    page = "Warehouse W-6146 is located in Basel, employs 244 people."
    spans = locate("Warehouse W-6146 is locatd in Basel employs 244 people", page)  # an OCR slip
    assert spans and spans[0][0] == 0 and spans[-1][1] >= page.index("people")
    assert locate("Something else entirely, not on the page", page) == []
    assert locate("   ", page) == []


def test_fold_keeps_the_origin_of_every_character():
    folded = fold("Ａ b\n-c")
    assert folded.text == "abc" and folded.origin == (0, 2, 5)


# -- PDF pages ---------------------------------------------------------------------------------------------------

def test_english_pdf_box_is_on_the_cited_line():
    boxes, marked, _ = _boxes_for(pdf_bytes([EN_LINES]), 1, EN_LINES[1])
    assert marked == EN_LINES[1]
    [box] = boxes
    # pdf_bytes prints line k (0-based) at baseline 720 - 14k points on a 792-point page; 144 dpi = 2 px/pt.
    baseline_px = (792 - (720 - 14)) * 2
    assert box.y0 < baseline_px + 2 and box.y1 > baseline_px - 20
    assert box.x0 == pytest.approx(72 * 2, abs=4)


def test_chinese_pdf_sentence_across_a_line_break_is_two_line_boxes():
    data = ZH_PDF.read_bytes()
    boxes, marked, size = _boxes_for(data, 1, ZH_CITED)
    assert fold(marked).text == fold(ZH_CITED).text
    assert len(boxes) == 2
    first, second = boxes
    # The sentence starts mid-line (after "再映射成整数编号。") and ends on the next printed line, at the margin.
    assert first.x0 > size[0] * 0.3 and second.x0 < size[0] * 0.2
    assert second.y0 > first.y1 - 2 and second.y0 - first.y0 < 60


def test_a_sentence_printed_twice_is_marked_inside_the_cited_chunk():
    lines = ["Rule: the gate closes at nine.", "First section ends.", "Second section starts.",
             "Rule: the gate closes at nine."]
    data = pdf_bytes([lines])
    boxes, _, _ = _boxes_for(data, 1, "the gate closes at nine", chunk_text="Second section starts. Rule: the gate")
    [box] = boxes
    assert box.y0 > (792 - (720 - 14 * 2)) * 2  # below the third line: the second occurrence


def test_merge_lines_joins_characters_not_lines():
    chars = [Box(0, 0, 10, 20), Box(11, 1, 20, 20), Box(0, 30, 10, 50)]
    assert merge_lines(chars) == [Box(0, 0, 20, 20), Box(0, 30, 10, 50)]


def _highlighted(png: bytes, box: Box | None = None) -> int:
    """Pixels of the outline colour (nothing on a page of black text on white is that colour)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if box is not None:
        image = image.crop((int(box.x0) - 8, int(box.y0) - 8, int(box.x1) + 8, int(box.y1) + 8))
    return int((np.asarray(image) == OUTLINE_RGBA[:3]).all(axis=2).sum())


def test_cited_place_pdf_draws_the_highlight_on_the_page(tmp_path):
    path = tmp_path / "harbour.pdf"
    path.write_bytes(pdf_bytes([["Cover page."], EN_LINES]))
    place = cited_place(_chunk(path, " ".join(EN_LINES), page=2), EN_LINES[1], NO_OCR, LIMITS)
    assert (place.kind, place.page, place.page_count, place.located, place.notice) == ("page", 2, 2, True, "")
    [box], _, _ = _boxes_for(path.read_bytes(), 2, EN_LINES[1])
    assert _highlighted(place.png, box) > 100
    assert _highlighted(place.png) == _highlighted(place.png, box)  # nowhere else
    fill = Image.open(io.BytesIO(place.png)).convert("RGB").getpixel((int(box.x1) - 2, int(box.y0) + 1))
    assert fill[2] < 200 and fill[0] > 200  # the amber fill over white paper (FILL_RGBA blended)
    assert FILL_RGBA[3] < 255


def test_cited_place_pdf_on_the_next_page_and_not_found(tmp_path):
    path = tmp_path / "two.pdf"
    path.write_bytes(pdf_bytes([["Page one text only."], EN_LINES]))
    # A passage merged with its neighbour may cite a sentence printed on the next page.
    place = cited_place(_chunk(path, "Page one text only.", page=1), EN_LINES[2], NO_OCR, LIMITS)
    assert (place.page, place.located) == (2, True)
    missing = cited_place(_chunk(path, "Page one text only.", page=1), "Nothing like this is printed anywhere",
                          NO_OCR, LIMITS)
    assert (missing.kind, missing.page, missing.located) == ("page", 1, False)
    assert "not found in the text of page 1" in missing.notice and _highlighted(missing.png) == 0


# -- bad originals ------------------------------------------------------------------------------------------------

def test_changed_moved_and_out_of_range_originals_show_the_stored_text(tmp_path):
    path = tmp_path / "harbour.pdf"
    path.write_bytes(pdf_bytes([EN_LINES]))
    chunk = _chunk(path, " ".join(EN_LINES), page=1)
    out_of_range = cited_place(Chunk(**{**chunk.__dict__, "page": 5}), EN_LINES[1], NO_OCR, LIMITS)
    assert out_of_range.kind == "text" and "page 5 is not in the file (it has 1 page(s))" in out_of_range.notice
    path.write_bytes(pdf_bytes([["Someone edited the file."]]))
    changed = cited_place(chunk, EN_LINES[1], NO_OCR, LIMITS)
    assert changed.kind == "text" and changed.text == chunk.text
    assert changed.text[changed.span[0]:changed.span[1]] == EN_LINES[1]
    assert "changed since it was indexed" in changed.notice and "showing the indexed text" in changed.notice
    path.unlink()
    moved = cited_place(chunk, EN_LINES[1], NO_OCR, LIMITS)
    assert "no longer at this path" in moved.notice and "\n" not in moved.notice


def test_encrypted_and_garbled_pdfs_show_the_stored_text(tmp_path):
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(pdf_bytes([EN_LINES], user_password="secret"))
    place = cited_place(_chunk(locked, EN_LINES[1], page=1), EN_LINES[1], NO_OCR, LIMITS)
    assert place.kind == "text" and "encrypted" in place.notice and str(locked) in place.notice
    garbled = tmp_path / "garbled.pdf"
    garbled.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    place = cited_place(_chunk(garbled, "text", page=1), "", NO_OCR, LIMITS)
    assert place.kind == "text" and "damaged" in place.notice and place.text == "text"


# -- decks, sheets, text ------------------------------------------------------------------------------------------

def test_deck_shows_the_slide_with_the_sentence_marked(tmp_path):
    deck = pptx.Presentation()
    for title, body in [("开场", "欢迎参加年会。"), ("安全须知", "东门晚上九点关闭。访客请在前台登记。")]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text, slide.placeholders[1].text = title, body
    path = tmp_path / "deck.pptx"
    deck.save(path)
    text = load_document(path, LIMITS, NO_OCR).pages[1].text
    place = cited_place(_chunk(path, text, page=2), "访客请在前台登记。", NO_OCR, LIMITS)
    assert (place.kind, place.page, place.page_count, place.notice) == ("text", 2, 2, "")
    assert place.text == text and place.text[place.span[0]:place.span[1]] == "访客请在前台登记。"


def test_sheet_shows_the_cited_row_with_its_header(tmp_path):
    path = tmp_path / "stock.csv"
    path.write_text("仓库,城市,员工\nA1,福州,199\nB2,厦门,135\nC3,成都,43\n", encoding="utf-8")
    text = load_document(path, LIMITS, NO_OCR).pages[0].text
    start = text.index("仓库: B2")
    chunk = _chunk(path, text[start:], start=start)
    place = cited_place(chunk, "仓库: B2；城市: 厦门", NO_OCR, LIMITS)
    assert place.kind == "row" and place.rows == [{"仓库": "B2", "城市": "厦门", "员工": "135"}]
    assert "B2" in place.text[place.span[0]:place.span[1]]


def test_text_passage_in_context_with_the_sentence_marked(tmp_path):
    paragraphs = [f"Paragraph {i} talks about topic number {i}." for i in range(200)]
    path = tmp_path / "notes.md"
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    text = load_document(path, LIMITS, NO_OCR).pages[0].text
    start = text.index(paragraphs[100])
    place = cited_place(_chunk(path, paragraphs[100] + "\n\n" + paragraphs[101], start=start),
                        "topic number 101", NO_OCR, LIMITS)
    assert place.kind == "text" and place.notice == "" and place.located
    assert place.text[place.span[0]:place.span[1]] == "topic number 101"
    # Context on both sides, cut at paragraph breaks, far shorter than the file.
    assert place.text.startswith("Paragraph ") and place.text.endswith(".") and paragraphs[99] in place.text
    assert len(place.text) < len(text) / 3


def test_whole_chunk_is_marked_when_there_is_no_quote(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Intro line.\n\nThe cited chunk sits here.\n\nOutro line.", encoding="utf-8")
    text = load_document(path, LIMITS, NO_OCR).pages[0].text
    start = text.index("The cited")
    place = cited_place(_chunk(path, "The cited chunk sits here.", start=start), "", NO_OCR, LIMITS)
    assert place.text[place.span[0]:place.span[1]] == "The cited chunk sits here."


# -- OCR'd pages --------------------------------------------------------------------------------------------------

def test_ocr_lines_holding_the_cited_text_are_marked():
    lines = [OcrLine("Warehouse W-1976 is in Lyon.", 0.99, 10, 10, 410, 40),
             OcrLine("Warehouse W-6146 is in Basel,", 0.99, 10, 50, 400, 80),
             OcrLine("employs 244 people. Other text", 0.99, 10, 90, 410, 120),
             OcrLine("in", 0.99, 10, 130, 40, 160)]
    boxes = cited_line_boxes(lines, "Warehouse W-6146 is in Basel, employs 244 people.")
    assert [b.y0 for b in boxes] == [50, 90]
    assert boxes[0].x1 == pytest.approx(400) and boxes[1].x1 < 300  # only the cited part of the shared line


@pytest.mark.slow
def test_scanned_page_is_read_again_and_the_cited_line_marked(tmp_path):
    from ingest.loaders.ocr_engine import installed_engine
    from ingest.testing.scanned_pages import image_pdf, make_pages

    if installed_engine(OcrSettings()) is None:
        pytest.skip("the 'ocr' extra is not installed")
    page = make_pages(2)[1]  # an English page
    path = image_pdf([page.image], tmp_path / "scan.pdf", 200)
    cited = page.text.split("\n")[2]
    place = cited_place(_chunk(path, page.text, page=1), cited, OcrSettings(), LIMITS)
    assert (place.kind, place.located, place.notice) == ("page", True, "")
    assert _highlighted(place.png) > 200


@pytest.mark.slow
def test_an_image_is_read_again_and_the_cited_chinese_line_marked(tmp_path):
    from ingest.loaders.ocr_engine import installed_engine
    from ingest.testing.scanned_pages import make_pages

    if installed_engine(OcrSettings()) is None:
        pytest.skip("the 'ocr' extra is not installed")
    page = make_pages(1)[0]  # a Chinese page
    path = tmp_path / "photo.png"
    page.image.save(path)
    cited = page.text.split("\n")[0]
    place = cited_place(_chunk(path, page.text), cited, OcrSettings(), LIMITS)
    assert (place.kind, place.located, place.notice) == ("page", True, "")
    assert _highlighted(place.png) > 200
    elsewhere = cited_place(_chunk(path, page.text), "Nothing like this is on the image at all", OcrSettings(), LIMITS)
    assert not elsewhere.located and "not found on the image" in elsewhere.notice and _highlighted(elsewhere.png) == 0
