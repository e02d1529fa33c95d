"""Plain records shared by every package: what a loaded document and a stored chunk look like."""

from __future__ import annotations

from dataclasses import dataclass, field


# Files whose pages are slides (citations say "slide N").
SLIDE_SUFFIXES = (".pptx",)


@dataclass
class PageText:
    """Text of one page (PDF) or of a whole file (page is None), after normalisation."""

    text: str
    page: int | None = None


@dataclass
class LoadedDocument:
    """A file read from disk, before chunking."""

    path: str
    content_hash: str
    pages: list[PageText]
    title: str = ""
    file_type: str = ""


@dataclass
class ChunkDraft:
    """A piece of a document produced by the chunker, not yet stored (no id)."""

    text: str
    page: int | None
    heading_path: list[str]
    char_start: int
    char_end: int
    ordinal: int


@dataclass
class Chunk:
    """A stored chunk. ``chunk_id`` is also its FAISS id.

    ``char_start``/``char_end`` index into the normalised text of ``page`` (or of the whole file when page is
    None), so a UI can show the passage in context and highlight it.
    """

    chunk_id: int
    doc_id: str  # content hash of the document; identical files share it
    source: str  # path of the file (the first one seen, for duplicate content)
    text: str
    ordinal: int
    page: int | None = None
    heading_path: list[str] = field(default_factory=list)
    char_start: int = 0
    char_end: int = 0
    title: str = ""

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)

    @property
    def is_slide(self) -> bool:
        """Whether ``page`` numbers a slide of a deck rather than a page."""
        return self.source.lower().endswith(SLIDE_SUFFIXES)

    @property
    def page_label(self) -> str:
        """Where in its file the chunk is, for citations: "p.3", "slide 3" in a deck, "" when the file has no pages."""
        if self.page is None:
            return ""
        return f"slide {self.page}" if self.is_slide else f"p.{self.page}"


@dataclass
class DocumentRecord:
    """A document in the catalog."""

    path: str
    content_hash: str
    mtime: float
    size: int
    n_chunks: int
    file_type: str = ""
    title: str = ""
    updated_at: float = 0.0
