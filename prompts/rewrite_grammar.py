"""A GBNF grammar (llama.cpp's constrained decoding) for the standalone rewrite: one line, one question, in the
message's language, ending at its question mark. In a Chinese rewrite every Latin-script word must be one the
conversation already used (a name the model would otherwise invent: "GPT-4" for "它"); Chinese text, digits and
punctuation are free. An English rewrite is held to one question line (its words cannot be listed)."""

from __future__ import annotations

import re

_LATIN_TERM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.'][A-Za-z0-9]+)*")
# Terms offered to the grammar, at most: each is an alternative the sampler checks at every Latin character.
MAX_TERMS = 64


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def conversation_terms(texts: list[str]) -> list[str]:
    """The Latin-script words of ``texts`` (names, abbreviations), longest first so a prefix never wins."""
    terms = {t for text in texts for t in _LATIN_TERM.findall(text)}
    return sorted(terms, key=lambda t: (-len(t), t))[:MAX_TERMS]


def rewrite_grammar(language: str, terms: list[str]) -> str:
    """The GBNF grammar of one rewritten question in ``language``; ``terms``: the Latin words a Chinese rewrite
    may use."""
    if language != "zh":
        return 'root ::= [A-Z0-9"\'(] [^\\n?]{2,200} "?"\n'
    term = " | ".join(_literal(t) for t in terms) if terms else '"\\u0000"'
    return ("root ::= piece{2,120} [？?]\n"
            "piece ::= cjk | term | [0-9] | [ .,:%+\\-/()（），、：《》“”‘’·\\[\\]]\n"
            "cjk ::= [\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff]\n"
            f"term ::= {term}\n")
