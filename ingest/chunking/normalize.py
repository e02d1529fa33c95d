"""Text normalisation applied to every loaded page before chunking (and usable on queries).

What it does, in order:
1. line endings to ``\\n``;
2. Unicode NFKC, except for the full-width Chinese punctuation in ``KEPT_FULLWIDTH``: NFKC would turn ``，`` into
   ``,`` and ``（`` into ``(``, which changes how Chinese text reads and how the chunker finds clause ends. Full-width
   letters/digits/space (``ＡＢＣ１２３``) still become ASCII, and PDF Kangxi radicals (``⼀`` → ``一``) become the
   ordinary characters;
3. the CJK *radicals-supplement* code points that NFKC leaves alone (``⻅`` → ``见``, ``⻚`` → ``页`` ...), which
   Chromium-printed PDFs emit, via a small table;
4. control and invisible format characters removed (newline and tab kept);
5. for PDF text, lines wrapped by the page layout re-joined into paragraphs (``unwrap_pdf_lines``);
   then spaces/tabs between two CJK characters removed (PDF extraction and copy-paste insert them);
6. trailing spaces on lines dropped and runs of blank lines collapsed to one blank line.

Markdown structure (headings, lists, tables, code fences, indentation) is left intact.
"""

from __future__ import annotations

import re
import unicodedata

# Full-width punctuation that stays full-width: it is the normal form in Chinese text.
KEPT_FULLWIDTH = "，！？；：（）～…"

# CJK Radicals Supplement characters with no NFKC mapping, seen in text extracted from PDFs.
RADICAL_FIXES = {
    "\u2ec4": "西", "\u2ec5": "见", "\u2ec6": "角", "\u2ec9": "贝", "\u2ecb": "车", "\u2ed3": "长",
    "\u2ed4": "门", "\u2ed8": "青", "\u2ed9": "韦", "\u2eda": "页", "\u2edb": "风", "\u2edc": "飞",
    "\u2edd": "食", "\u2ee2": "马", "\u2ee3": "骨", "\u2ee4": "鬼", "\u2ee5": "鱼", "\u2ee6": "鸟",
    "\u2ee8": "麦", "\u2ee9": "黄", "\u2eec": "齐", "\u2eee": "齿", "\u2ef0": "龙", "\u2ef3": "龟",
}
# A regex finds the rare radicals fast; str.translate with a dict walks every character in Python-level lookups.
_RADICAL = re.compile(f"[{''.join(RADICAL_FIXES)}]")

_KEPT_SPLIT = re.compile(f"([{KEPT_FULLWIDTH}]+)")
# C0/C1 controls except \t and \n, plus invisible format characters that break tokenisation and matching.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff]")
# Ideographs (incl. ext. A and compatibility), CJK punctuation, and full-width punctuation.
_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff0f\uff1a-\uff20"
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")
_CJK_CHAR = re.compile(f"[{_CJK}]")
# A PDF line at least this fraction as wide as the page's widest line was wrapped by the layout.
WRAP_MIN_FILL = 0.8
_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n)+")


def _nfkc_keeping_chinese_punctuation(text: str) -> str:
    parts = _KEPT_SPLIT.split(text)
    # split() with a capture group puts the kept punctuation at the odd positions.
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts))


def _display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def unwrap_pdf_lines(text: str, min_fill: float = WRAP_MIN_FILL) -> str:
    """Rebuild paragraphs from PDF text, where every printed line ends in a newline.

    A line at least ``min_fill`` as wide as the widest line on the page was wrapped by the layout, so it is joined
    to the next line (with no space between two CJK characters, one space otherwise). A shorter line ended a
    paragraph or is a heading, so its newline becomes a blank line (a paragraph break for the chunker).
    """
    lines = [line.strip() for line in text.split("\n")]
    widths = [_display_width(line) for line in lines]
    full = max(widths, default=0)
    out: list[str] = [lines[0]] if lines else []
    for width, line in zip(widths, lines[1:]):
        if not line:
            continue
        prev = out[-1]
        if prev and width >= min_fill * full:
            cjk_join = _CJK_CHAR.match(prev[-1]) and _CJK_CHAR.match(line[0])
            glue = "" if cjk_join or (prev.endswith("-") and prev[-2:-1].isalpha()) else " "
            out[-1] = prev + glue + line
        else:
            out.append(line)
    return "\n\n".join(out)


def normalize_text(text: str, pdf_lines: bool = False) -> str:
    """Return ``text`` normalised as described in the module docstring.

    ``pdf_lines`` is for text extracted from a PDF page, where every printed line ends in a newline: lines are
    re-joined into paragraphs by ``unwrap_pdf_lines``. In Markdown and plain text a line break is the author's and
    is kept.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _nfkc_keeping_chinese_punctuation(text)
    text = _RADICAL.sub(lambda m: RADICAL_FIXES[m.group(0)], text)
    text = _CONTROL.sub("", text)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    if pdf_lines:
        text = unwrap_pdf_lines(text)
    # Per-line rstrip: a regex for trailing blanks tries every space run in the text, which is slow on big files.
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    text = _BLANK_RUN.sub("\n\n", text)
    return text.strip("\n")
