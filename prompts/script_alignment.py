"""An answer written in its passages' script: the small model drifts into simplified characters over traditional
passages ("十字军東征" for the passage's "十字軍東征", "美国电影學會"), which a reader sees as a misquote and which
verbatim comparisons (lexical support, a name the passages write) miss.

Each character of the answer that the passages never write, but whose simplified form is the simplified form of
a character they do write, becomes the passages' character. Mapping characters through the passages' own text
avoids converting whole phrases (OpenCC's s2t reads a mixed "东征"-less "東征" as "東徵"): what the passages write
is the reference, and a character they do not hold is left as it is. OpenCC's t2s gives the simplified forms."""

from __future__ import annotations

from functools import lru_cache

import opencc

_CJK = range(0x3400, 0xA000)


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=65536)
def _simplified(char: str) -> str:
    converted = _t2s().convert(char)
    return converted if len(converted) == 1 else char


def align_script(answer: str, passages: list[str]) -> str:
    """``answer`` with every Chinese character the passages lack replaced by the passages' own writing of it."""
    written = {c for text in passages for c in text if ord(c) in _CJK}
    by_simplified: dict[str, str] = {}
    for c in sorted(written):
        by_simplified.setdefault(_simplified(c), c)
    return "".join(c if c in written or ord(c) not in _CJK else by_simplified.get(_simplified(c), c)
                   for c in answer)
