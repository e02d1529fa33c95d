"""Find the [n] citations in an answer, drop numbers that name no passage, and attach the quoted passages."""

from __future__ import annotations

import re

from prompts.records import Citation
from prompts.templates import PackedPassage

# [1], [1, 2], [1，2], 【1】 — the forms small models write; ranges are not expected from the prompt.
_CITATION = re.compile(r"[\[【]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]】]")
_NUMBER = re.compile(r"\d+")


def parse_citations(text: str) -> list[int]:
    """All cited numbers, in order of first appearance, without duplicates."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        for number in _NUMBER.findall(match.group(1)):
            if int(number) not in seen:
                seen.append(int(number))
    return seen


def remove_invalid_citations(text: str, valid: set[int]) -> str:
    """Rewrite each citation keeping only valid numbers (as ``[n]`` markers); a citation left empty is removed."""

    def fix(match: re.Match[str]) -> str:
        kept = [n for n in (int(x) for x in _NUMBER.findall(match.group(1))) if n in valid]
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    return _CITATION.sub(fix, text)


def build_citations(text: str, packed: list[PackedPassage]) -> list[Citation]:
    """Citations for the valid numbers used in ``text``, with the exact passage text the model was shown."""
    by_number = {p.number: p for p in packed}
    return [Citation(number=n, passage=by_number[n].passage, quoted_text=by_number[n].text,
                     spans=by_number[n].spans)
            for n in parse_citations(text) if n in by_number]
