"""File names and document text as every face shows them: control characters and bidirectional-override
characters made visible, never passed to a terminal or a page raw.

A file name or a document may carry terminal escape sequences (``\\x1b]0;…\\x07`` retitles the terminal,
``\\x1b[2J`` clears it), a newline that splits a report line in two, or bidi overrides (``report\\u202egpj.exe``
displays as "reportexe.jpg"). Each such character is replaced by its escape (``\\u001b``, ``\\u202e``, ``\\n``),
written as JSON writes it, so the same function also makes JSON text safe to print without changing what it
means; printable text in any script is left alone. This is the one place that decides which characters those are;
the faces (CLIs, the HTTP server's plain-text sources, the chat page) call ``visible``.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the bidi controls: the Arabic letter mark, LRM/RLM, the embeddings and overrides
# (LRE, RLE, PDF, LRO, RLO) and the isolates (LRI, RLI, FSI, PDI).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_HIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
# Document text keeps its line breaks and tabs (they are layout there, not an attack on one line).
_HIDDEN_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\u{ord(char):04x}"


def visible(text: str, keep_lines: bool = False) -> str:
    """``text`` with every control and bidi character shown as its escape (``\\u001b``, ``\\u202e``, ``\\n``). With
    ``keep_lines`` (document text, answers), newlines and tabs stay as they are; a file name or any one-line label
    gets them escaped too."""
    return (_HIDDEN_IN_TEXT if keep_lines else _HIDDEN).sub(_escape, text)
