"""Numbers an answer states that its passages do not contain.

Used on the second attempt after a refusal (app/answer/answer_pipeline.py): asked to answer without the option to
refuse, the small model fills gaps with plausible figures ("星河数据库是2019年发布的"), and such short answers are
below the length the lexical check judges. A figure copied from the passages is kept; one that is not there is not."""

from __future__ import annotations

import re
import unicodedata

from prompts.citations import remove_invalid_citations

# Digits with optional decimal part; thousands separators are dropped before matching ("1,024" = "1024").
_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.]*\d)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")


def _numbers(text: str) -> set[str]:
    text = _THOUSANDS.sub("", unicodedata.normalize("NFKC", text))
    return set(_NUMBER.findall(remove_invalid_citations(text, set())))


def unsupported_numbers(answer: str, passage_texts: list[str], question: str = "") -> list[str]:
    """The numbers of ``answer`` (citation markers aside) that occur as a whole number in none of the passages
    (nor in ``question``: "2023年排放…约1850万吨" repeats the year asked, it invents nothing)."""
    found = _numbers("\n".join(passage_texts)) | _numbers(question)
    return sorted(_numbers(answer) - found, key=answer.find)
