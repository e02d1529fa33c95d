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
5. spaces/tabs between two CJK characters removed (PDF extraction and copy-paste insert them);
   with ``join_wrapped_lines`` also single line breaks between two CJK characters (hard-wrapped PDF lines);
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
_RADICAL_TABLE = str.maketrans(RADICAL_FIXES)

_KEPT_SPLIT = re.compile(f"([{KEPT_FULLWIDTH}]+)")
# C0/C1 controls except \t and \n, plus invisible format characters that break tokenisation and matching.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff]")
# Ideographs (incl. ext. A and compatibility), CJK punctuation, and full-width punctuation.
_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff0f\uff1a-\uff20"
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")
_NEWLINE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")
_TRAILING_SPACE = re.compile(r"[ \t]+(?=\n)|[ \t]+\Z")
_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n)+")


def _nfkc_keeping_chinese_punctuation(text: str) -> str:
    parts = _KEPT_SPLIT.split(text)
    # split() with a capture group puts the kept punctuation at the odd positions.
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts))


def _join_wrapped_cjk_lines(text: str) -> str:
    """Join lines broken between two CJK characters, but never join a Markdown heading to the next line."""
    def join(match: re.Match[str]) -> str:
        line_start = text.rfind("\n", 0, match.start()) + 1
        return match.group(0) if text.startswith("#", line_start) else ""
    return _NEWLINE_BETWEEN_CJK.sub(join, text)


def normalize_text(text: str, join_wrapped_lines: bool = False) -> str:
    """Return ``text`` normalised as described in the module docstring.

    ``join_wrapped_lines`` is meant for PDF text, where every visual line ends in a newline; in Markdown and
    plain text a line break is the author's and is kept.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _nfkc_keeping_chinese_punctuation(text)
    text = text.translate(_RADICAL_TABLE)
    text = _CONTROL.sub("", text)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    if join_wrapped_lines:
        text = _join_wrapped_cjk_lines(text)
    text = _TRAILING_SPACE.sub("", text)
    text = _BLANK_RUN.sub("\n\n", text)
    return text.strip("\n")
