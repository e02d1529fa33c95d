"""``chunk_document``: split a loaded document into retrieval-sized chunks along its structure.

Order of preference for a cut: heading > paragraph/table/code block > sentence (line break, Chinese 。！？；…,
English . ! ? before whitespace, not after abbreviations, initials or list numbers) > clause punctuation or
whitespace > any character (only for a run longer than ``chunk_size`` with neither).

Guarantees (tested):
- a chunk never spans two PDF pages; its ``page`` is the page it is on;
- ``text == page_text[char_start:char_end]``, except for the continuation pieces of a table too big for one chunk:
  their text is the table's header and separator rows, a newline, then ``page_text[char_start:char_end]`` (the
  rows the piece covers) — so ``text.endswith(page_text[char_start:char_end])`` always holds;
- ``len(text) <= chunk_size``, except a piece below ``min_chunk_chars`` merged into a neighbour
  (at most ``chunk_size + min_chunk_chars``);
- a new heading starts a new chunk; ``heading_path`` is the stack of headings in force (e.g. ["安装", "依赖"]);
- overlap: a chunk that continues the previous one in the same section starts with the previous chunk's last
  whole sentences that fit in ``chunk_overlap`` characters, or else with its last clause that fits.

The splitting is written here rather than taken from a text-splitter library because those return strings, and
offsets recovered by searching for the string are wrong for repeated text; heading paths and table headers also
need the block structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.chunking.text_structure import (
    Block,
    hard_split,
    parse_blocks,
    split_sentences,
    trim,
)
from ingest.chunking.record_chunker import chunk_records
from ingest.records import ChunkDraft, LoadedDocument
from ingest.settings import ChunkingSettings

# Spreadsheets and CSV: one record per line, chunked by record_chunker (kept in step with the loaders' types).
RECORD_FILE_TYPES = frozenset({"xlsx", "csv"})
_CLAUSE_END = "，、,：:；;）) \n"


@dataclass
class _Unit:
    start: int
    end: int
    kind: str  # "heading" | "text" | "code"


@dataclass
class _Piece:
    """A finished chunk of one page, before tiny-piece merging."""

    start: int
    end: int
    heading_path: list[str]
    prefix: str = ""


@dataclass
class _PagePacker:
    text: str
    size: int
    overlap: int
    pieces: list[_Piece] = field(default_factory=list)
    units: list[_Unit] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    previous: list[_Unit] = field(default_factory=list)  # units of the last chunk cut for size, for overlap

    @property
    def start(self) -> int:
        return self.units[0].start

    def fits(self, end: int) -> bool:
        return not self.units or end - self.start <= self.size

    def flush(self, keep_for_overlap: bool) -> None:
        if self.units:
            self.pieces.append(_Piece(self.units[0].start, self.units[-1].end, list(self.path)))
        self.previous = list(self.units) if keep_for_overlap else []
        self.units = []

    def _overlap_units(self, next_end: int) -> list[_Unit]:
        """Trailing sentences of the previous chunk (or a clause of the last one) that fit the overlap budget
        and still leave room for the unit ending at ``next_end``."""
        tail: list[_Unit] = []
        for unit in reversed(self.previous):
            if unit.kind != "text" or self.previous[-1].end - unit.start > self.overlap:
                break
            tail.insert(0, unit)
        if not tail and self.previous and self.previous[-1].kind == "text":
            last = self.previous[-1]
            floor = max(last.start, last.end - self.overlap)
            for pos in range(floor, last.end):
                if self.text[pos - 1] in _CLAUSE_END and pos > last.start:
                    start, end = trim(self.text, pos, last.end)
                    if start < end:
                        tail = [_Unit(start, end, "text")]
                    break
        if tail and next_end - tail[0].start > self.size:
            return []
        return tail

    def add(self, unit: _Unit) -> None:
        """Append one unit, cutting a chunk first (with overlap) when it would not fit."""
        if not self.fits(unit.end):
            self.flush(keep_for_overlap=True)
        if not self.units:
            self.units = self._overlap_units(unit.end)
            self.previous = []
        self.units.append(unit)

    def add_heading(self, block: Block) -> None:
        if any(u.kind != "heading" for u in self.units) or not self.fits(block.end):
            self.flush(keep_for_overlap=False)
        self.previous = []
        self.units.append(_Unit(block.start, block.end, "heading"))

    def add_block(self, units: list[_Unit]) -> None:
        """Keep a block whole when it fits the current chunk or an empty one; else add it unit by unit."""
        start, end = units[0].start, units[-1].end
        whole = end - start <= self.size
        if whole and self.fits(end):
            self.units.extend(units)
            self.previous = []
            return
        only_headings = all(u.kind == "heading" for u in self.units)
        if whole and not only_headings:
            self.flush(keep_for_overlap=True)
            overlap = self._overlap_units(end)
            self.units = overlap + units
            self.previous = []
            return
        for unit in units:
            self.add(unit)

    def add_table(self, block: Block) -> None:
        """A table that fits is one block; a bigger one is cut between rows, each piece repeating the header."""
        if block.end - block.start <= self.size:
            self.add_block([_Unit(block.start, block.end, "code")])
            return
        header_end = block.rows[1][1]
        header = self.text[block.start:header_end]
        if len(block.rows) < 3 or len(header) > self.size // 2:
            # Repeating a header this big would leave no room for rows: cut the table by lines instead.
            self.add_block(_line_units(self.text, block, self.size, "code"))
            return
        self.flush(keep_for_overlap=False)
        piece_start: int | None = block.start
        prefix, n_rows, prev_end = "", 0, header_end
        for row_start, row_end in block.rows[2:]:
            if piece_start is None:
                piece_start = row_start
            extra = len(prefix) + 1 if prefix else 0
            if n_rows and extra + row_end - piece_start > self.size:
                self._emit(piece_start, prev_end, prefix)
                piece_start, prefix, n_rows = row_start, header, 0
                extra = len(header) + 1
            if extra + row_end - piece_start > self.size:
                # A row too big even for a fresh piece: cut it like any long text, without the header.
                if piece_start < row_start:
                    self._emit(piece_start, prev_end, prefix)
                for s, e in hard_split(self.text, row_start, row_end, self.size):
                    self._emit(s, e, "")
                piece_start, prefix, n_rows, prev_end = None, header, 0, row_end
                continue
            n_rows += 1
            prev_end = row_end
        if piece_start is not None and n_rows:
            self._emit(piece_start, prev_end, prefix)

    def _emit(self, start: int, end: int, prefix: str) -> None:
        self.pieces.append(_Piece(start, end, list(self.path), prefix))


def _text_units(text: str, block: Block, size: int) -> list[_Unit]:
    """Units of a paragraph (its sentences) or code block (its lines), each cut further if longer than ``size``.
    The packer keeps the units of a block together when the whole block fits."""
    if block.kind == "code":
        return _line_units(text, block, size, "code")
    return _units(text, split_sentences(text, block.start, block.end), size, "text")


def _line_units(text: str, block: Block, size: int, kind: str) -> list[_Unit]:
    return _units(text, _code_lines(text, block.start, block.end), size, kind)


def _units(text: str, spans: list[tuple[int, int]], size: int, kind: str) -> list[_Unit]:
    units: list[_Unit] = []
    for s, e in spans:
        pieces = hard_split(text, s, e, size) if e - s > size else [(s, e)]
        units.extend(_Unit(ps, pe, kind) for ps, pe in pieces)
    return units


def _code_lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans, pos = [], start
    while pos < end:
        nl = text.find("\n", pos, end)
        line_end = end if nl < 0 else nl
        if line_end > pos:
            spans.append((pos, line_end))
        pos = line_end + 1
    return spans


def _merge_tiny(pieces: list[_Piece], settings: ChunkingSettings) -> list[_Piece]:
    """Merge pieces shorter than ``min_chunk_chars`` into the previous piece of the same section, else into the
    next piece (a lone heading belongs with what follows), else into the previous piece anyway."""
    limit = settings.chunk_size + settings.min_chunk_chars
    merged: list[_Piece] = []

    def merge_back(piece: _Piece, same_section_only: bool) -> bool:
        prev = merged[-1] if merged else None
        if prev is None or prev.prefix or piece.end - prev.start > limit:
            return False
        if same_section_only and prev.heading_path != piece.heading_path:
            return False
        merged[-1] = _Piece(prev.start, piece.end, prev.heading_path)
        return True

    carry: _Piece | None = None  # a tiny piece waiting to be glued to the front of the next one
    for piece in pieces:
        if carry is not None:
            if not piece.prefix and piece.end - carry.start <= limit:
                piece = _Piece(carry.start, piece.end, piece.heading_path)
            elif not merge_back(carry, same_section_only=False):
                merged.append(carry)
            carry = None
        if not piece.prefix and piece.end - piece.start < settings.min_chunk_chars:
            if not merge_back(piece, same_section_only=True):
                carry = piece
            continue
        merged.append(piece)
    if carry is not None and not merge_back(carry, same_section_only=False):
        merged.append(carry)
    return merged


def chunk_document(doc: LoadedDocument, settings: ChunkingSettings) -> list[ChunkDraft]:
    """Chunks of ``doc`` in reading order, ``ordinal`` counting from 0 across pages."""
    if doc.file_type in RECORD_FILE_TYPES:
        return chunk_records(doc, settings)
    plain_headings = doc.file_type in ("text", "pdf")  # Markdown-like sources mark headings with "#"
    stack: list[tuple[int, str]] = []  # (level, title) of the headings in force; carried across PDF pages
    drafts: list[ChunkDraft] = []
    for page in doc.pages:
        text = page.text
        packer = _PagePacker(text, settings.chunk_size, settings.chunk_overlap)
        packer.path = [title for _, title in stack]
        for block in parse_blocks(text, plain_headings=plain_headings):
            if block.kind == "heading" and block.end - block.start <= settings.chunk_size:
                while stack and stack[-1][0] >= block.level:
                    stack.pop()
                stack.append((block.level, block.title))
                packer.add_heading(block)
                packer.path = [title for _, title in stack]
            elif block.kind == "table":
                packer.add_table(block)
            else:
                packer.add_block(_text_units(text, block, settings.chunk_size))
        packer.flush(keep_for_overlap=False)
        for piece in _merge_tiny(packer.pieces, settings):
            body = text[piece.start:piece.end]
            drafts.append(ChunkDraft(text=f"{piece.prefix}\n{body}" if piece.prefix else body, page=page.page,
                                     heading_path=piece.heading_path, char_start=piece.start,
                                     char_end=piece.end, ordinal=len(drafts)))
    return drafts
