"""Tokens for keyword search over mixed Chinese/English text.

Chinese runs are cut into words by rjieba (search mode, so a long compound also yields its parts); English words
are lowercased; numbers stay whole tokens (``4096``, ``3.5``), letters and digits are split apart so ``GPT-4``
and ``gpt4`` both give ``gpt`` + ``4``. Stopwords and punctuation are dropped. Optional CJK character bigrams
(prefixed "#" so they never collide with words) make matching robust where the word segmenter errs (traditional Chinese, rare names, new terms).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

import rjieba
from bm25s.stopwords import STOPWORDS_CHINESE, STOPWORDS_EN_PLUS

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_OR_NUMBER = re.compile(r"[a-z]+|\d+(?:\.\d+)*")
_STOPWORDS = frozenset(STOPWORDS_CHINESE) | frozenset(STOPWORDS_EN_PLUS)


@dataclass(frozen=True)
class TokenizerOptions:
    """How text is cut into keyword tokens; stored with a keyword index so queries are cut the same way."""

    cjk_bigrams: bool = True
    cjk_words: bool = True

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, bool]) -> TokenizerOptions:
        return cls(**{k: bool(v) for k, v in values.items() if k in cls.__dataclass_fields__})


def _cjk_tokens(run: str, options: TokenizerOptions) -> list[str]:
    tokens: list[str] = []
    if options.cjk_words:
        tokens.extend(w for w in rjieba.cut_for_search(run) if w not in _STOPWORDS)
    if options.cjk_bigrams:
        if len(run) == 1:
            if not options.cjk_words and run not in _STOPWORDS:
                tokens.append(run)
        else:
            tokens.extend("#" + run[i:i + 2] for i in range(len(run) - 1))
    return tokens


def tokenize(text: str, options: TokenizerOptions = TokenizerOptions()) -> list[str]:
    """Keyword tokens of ``text``, in order (duplicates kept: BM25 counts them)."""
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    position = 0
    for match in _CJK_RUN.finditer(text):
        tokens.extend(_latin_tokens(text[position:match.start()]))
        tokens.extend(_cjk_tokens(match.group(), options))
        position = match.end()
    tokens.extend(_latin_tokens(text[position:]))
    return tokens


def _latin_tokens(text: str) -> list[str]:
    return [t for t in _LATIN_OR_NUMBER.findall(text) if t not in _STOPWORDS]
