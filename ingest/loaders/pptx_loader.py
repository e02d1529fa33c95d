"""PowerPoint .pptx with python-pptx: one slide = one page; the slide title is a ``#`` heading, then the body
text of every shape (groups included) in order, tables as Markdown tables, and the speaker notes."""

from __future__ import annotations

import io

from ingest.chunking.normalize import normalize_text
from ingest.loaders.load_error import LoadError
from ingest.loaders.zip_guard import check_zip_document
from ingest.records import PageText
from ingest.settings import LimitSettings

NOTES_LABEL = "备注："


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(table) -> str:
    rows = ["| " + " | ".join(_cell(c.text) for c in row.cells) + " |" for row in table.rows]
    if not rows:
        return ""
    n_cols = len(table.columns)
    return "\n".join([rows[0], "|" + " --- |" * n_cols, *rows[1:]])


def _shape_blocks(shape, title_id: int | None) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_id == title_id:
        return []
    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [b for child in shape.shapes for b in _shape_blocks(child, title_id)]
    if getattr(shape, "has_table", False) and shape.has_table:
        return [_table(shape.table)]
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines = [p.text.strip() for p in shape.text_frame.paragraphs]
        return ["\n".join(line for line in lines if line)]
    return []


def read_pptx(data: bytes, path: str, limits: LimitSettings) -> tuple[list[PageText], str]:
    """Return one ``PageText`` per slide (page = slide number) and the deck's title property."""
    import pptx

    check_zip_document(data, path, ".pptx", limits)
    try:
        deck = pptx.Presentation(io.BytesIO(data))
        slides = list(deck.slides)
        if len(slides) > limits.max_pages:
            raise LoadError(path, f"{len(slides)} slides, over the limit of {limits.max_pages} (limits.max_pages)")
        pages = []
        for number, slide in enumerate(slides, 1):
            title_shape = slide.shapes.title
            title = " ".join(title_shape.text.split()) if title_shape is not None else ""
            blocks = [f"# {title}"] if title else []
            blocks += _shape_blocks_all(slide, title_shape.shape_id if title_shape is not None else None)
            if slide.has_notes_slide:
                notes = slide.notes_slide.notes_text_frame
                if notes is not None and notes.text.strip():
                    blocks.append(NOTES_LABEL + notes.text.strip())
            pages.append(PageText(text=normalize_text("\n\n".join(b for b in blocks if b.strip())), page=number))
        deck_title = (deck.core_properties.title or "").strip()
    except LoadError:
        raise
    except Exception as exc:  # python-pptx, zipfile and lxml raise many types on broken files
        raise LoadError(path, f"not a valid .pptx file ({type(exc).__name__}: {exc})") from exc
    if not any(p.text for p in pages):
        raise LoadError(path, f"no text in {len(pages)} slide(s) (only pictures? text in images is not read)")
    return pages, deck_title


def _shape_blocks_all(slide, title_id: int | None) -> list[str]:
    return [b for shape in slide.shapes for b in _shape_blocks(shape, title_id)]
