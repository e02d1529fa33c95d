"""Find structure in normalised text as character spans: blocks (headings, paragraphs, tables, code fences) and
sentences. Spans are ``(start, end)`` offsets into the text, trimmed of surrounding whitespace, so the chunker can
report exact offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

Span = tuple[int, int]

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
# Heading-like lines of plain Chinese text: "第三章 训练", "第2节 数据", "一、什么是..." — only when the line is a
# paragraph of its own and short, which keeps the false-positive rate low.
_PLAIN_HEADING = re.compile(r"^\s*(?:(第[一二三四五六七八九十百零\d]+[章部篇])|(第[一二三四五六七八九十百零\d]+节)"
                            r"|([一二三四五六七八九十]+、))\s*\S")
MAX_PLAIN_HEADING_CHARS = 40
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")

# Sentence ends: Chinese enders (no space needed; also half-width !?; right after a Chinese character),
# English enders followed by whitespace, and line breaks.
_SENTENCE_END = re.compile(r"[。！？；…]+[”’\"'）)」』》】]*|(?<=[\u4e00-\u9fff])[!?;]+[”’\"')）]*"
                           r"|[.!?]+[”’\"')）\]]*(?=\s)|\n")
ABBREVIATIONS = frozenset({
    "e.g.", "i.e.", "etc.", "vs.", "cf.", "al.", "fig.", "figs.", "eq.", "no.", "vol.", "pp.", "mr.", "mrs.", "ms.",
    "dr.", "prof.", "inc.", "ltd.", "jr.", "sr.", "st.", "approx.", "resp.", "sec.", "ch.",
})
_WORD_BEFORE = re.compile(r"(\S+)$")
# How far back from a period to look for the word it ends (longer than any entry above, e.g. "approx").
LONGEST_ABBREVIATION = 12
# Preferred places for a hard split: after clause punctuation or at whitespace.
_SOFT_BREAK = re.compile(r"[，、,：:；;）)]|\s")


@dataclass
class Block:
    kind: str  # "heading" | "paragraph" | "table" | "code"
    start: int
    end: int
    level: int = 0
    title: str = ""
    rows: list[Span] = field(default_factory=list)  # table rows, header and separator included


def _lines(text: str) -> list[Span]:
    spans, pos = [], 0
    while pos <= len(text):
        nl = text.find("\n", pos)
        end = len(text) if nl < 0 else nl
        spans.append((pos, end))
        if nl < 0:
            break
        pos = nl + 1
    return spans


def trim(text: str, start: int, end: int) -> Span:
    """Shrink ``[start, end)`` so it neither starts nor ends with whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _fence_closes(line: str, marker: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(marker) and set(stripped) == {marker[0]}


def parse_blocks(text: str, plain_headings: bool = False) -> list[Block]:
    """Split ``text`` into blocks in order. Markdown ``#`` headings are always recognised (they are cheap and
    reliable, and .txt files often contain Markdown); Chinese numbered headings only with ``plain_headings``."""
    lines = _lines(text)
    blocks: list[Block] = []
    i, n = 0, len(lines)
    while i < n:
        s, e = lines[i]
        line = text[s:e]
        if not line.strip():
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            j = i + 1
            while j < n and not _fence_closes(text[lines[j][0]:lines[j][1]], fence.group(1)):
                j += 1
            blocks.append(Block("code", *trim(text, s, lines[min(j, n - 1)][1])))
            i = j + 1
            continue
        heading = _MD_HEADING.match(line)
        if heading:
            blocks.append(Block("heading", *trim(text, s, e), level=len(heading.group(1)),
                                title=heading.group(2).strip()))
            i += 1
            continue
        if line.lstrip().startswith("|"):
            j = i
            while j < n and text[lines[j][0]:lines[j][1]].lstrip().startswith("|"):
                j += 1
            rows = [trim(text, *lines[k]) for k in range(i, j)]
            if len(rows) >= 2 and _TABLE_SEPARATOR.match(text[rows[1][0]:rows[1][1]]):
                blocks.append(Block("table", rows[0][0], rows[-1][1], rows=rows))
                i = j
                continue
        j = i + 1
        while j < n:
            nxt = text[lines[j][0]:lines[j][1]]
            if not nxt.strip() or _FENCE.match(nxt) or _MD_HEADING.match(nxt) or nxt.lstrip().startswith("|"):
                break
            j += 1
        start, end = trim(text, s, lines[j - 1][1])
        plain = _PLAIN_HEADING.match(text[start:end]) if plain_headings and j == i + 1 else None
        if plain and end - start <= MAX_PLAIN_HEADING_CHARS:
            level = 2 if plain.group(2) else 1
            blocks.append(Block("heading", start, end, level=level, title=text[start:end]))
        else:
            blocks.append(Block("paragraph", start, end))
        i = j
    return blocks


def _is_abbreviation(text: str, dot: int, floor: int) -> bool:
    word = _WORD_BEFORE.search(text, max(floor, dot - LONGEST_ABBREVIATION), dot)
    if not word:
        return False
    token = word.group(1)
    # "e.g." / "Dr." / a single initial "J." / a list number "2." do not end a sentence.
    return (token.lower() + "." in ABBREVIATIONS or token.lower().split("(")[-1] + "." in ABBREVIATIONS
            or (len(token) == 1 and token.isalpha()) or token.isdigit())


def split_sentences(text: str, start: int, end: int) -> list[Span]:
    """Sentence spans inside ``text[start:end]``; together they cover all its non-whitespace characters."""
    spans: list[Span] = []
    cut = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if text[match.start()] == "." and _is_abbreviation(text, match.start(), start):
            continue
        s, e = trim(text, cut, match.end())
        if s < e:
            spans.append((s, e))
        cut = match.end()
    s, e = trim(text, cut, end)
    if s < e:
        spans.append((s, e))
    return spans


def hard_split(text: str, start: int, end: int, limit: int) -> list[Span]:
    """Cut a span longer than ``limit`` into pieces of at most ``limit`` characters, preferring to cut after
    clause punctuation or at whitespace in the second half of each piece."""
    pieces: list[Span] = []
    while end - start > limit:
        cut = start + limit
        soft = [m.end() for m in _SOFT_BREAK.finditer(text, start + limit // 2, start + limit)]
        if soft:
            cut = soft[-1]
        s, e = trim(text, start, cut)
        if s < e:
            pieces.append((s, e))
        start = trim(text, cut, end)[0]
    if start < end:
        pieces.append((start, end))
    return pieces
