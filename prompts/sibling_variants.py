"""A question naming one variant of a name, answered by a sentence about a sibling variant of the same stem.

The near miss issue #25 names ("a question naming XX-base…" answered with XX-Chat's figure) and the one the
dialogue bench shows: "Top-k 采样最早是谁在哪一年提出的？" answered with the sentence that dates *Top-p* sampling. The
asked name occurs in the passage (a section further on), so the name check passes; only the cited sentence is about
another variant: Top-p for Top-k, GPT-4 for GPT-3, Llama-2-13B for Llama-2-7B, BERT-large for BERT-base.

A name's parts are its letter runs and its numbers ("Llama-2-7B-chat" → llama, 2, 7, b, chat; "GPT-3.5" → gpt, 3.5).
A sibling has as many parts, the same first part (the stem), and differs from the asked name in exactly one later
part, where both hold a variant mark: a number, or a short word (k, p, base, chat, large). "non-Afghan" and
"non-Muslim" share only a prefix, "Seven-Day" and "Six-Day" no stem: those are other names, for the name check.

The evidence speaks against the answer only when it names a sibling and not the asked name; evidence naming neither
(it says "it", or paraphrases) is not against it. The plain-variant rule of the name check holds here too: "X-7B"
names "X-7B-base" (prompts/question_names.py), so "X-7B" alone is no sibling of "X-7B-base" — but "X-7B-Chat"
is."""

from __future__ import annotations

import re
import unicodedata

from prompts.question_names import LATIN_TERM, PLAIN_VARIANTS, question_names

# A name's parts: letter runs and numbers (a version "3.5" is one part).
_PART = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)*")
# A variant needs a stem: a one-part name ("RLHF") has no siblings.
_MIN_PARTS = 2
# What tells variants of one stem apart: a number (3, 3.5, 7, 13) or a short word (k, p, base, chat, large, xl);
# longer words name other things ("non-Afghan", "non-Muslim").
_VARIANT_MARK = re.compile(r"\d+(?:\.\d+)*|[a-z]{1,5}")


def _parts(term: str) -> tuple[str, ...]:
    return tuple(p.lower() for p in _PART.findall(term))


def asked_variants(question: str, language: str) -> list[str]:
    """The question's names (prompts/question_names.py) that have a stem and a variant part."""
    return [n for n in question_names(question, language) if len(_parts(n)) >= _MIN_PARTS]


def _names_exactly(term: tuple[str, ...], asked: tuple[str, ...]) -> bool:
    """``term`` is ``asked`` itself, or its plain form ("x-7b" for "x-7b-base")."""
    return term == asked or (asked[-1] in PLAIN_VARIANTS and term == asked[:-1])


def _is_sibling(term: tuple[str, ...], asked: tuple[str, ...]) -> bool:
    if len(term) != len(asked) or term[0] != asked[0]:
        return False
    differing = [(a, b) for a, b in zip(term, asked) if a != b]
    return len(differing) == 1 and all(_VARIANT_MARK.fullmatch(p) for p in differing[0])


def sibling_variants(asked: list[str], evidence: str) -> list[tuple[str, list[str]]]:
    """For each asked variant that ``evidence`` does not name, the siblings it names instead (evidence against the
    answer); asked variants the evidence names, or whose siblings it does not name either, are left out. ``asked``:
    every variant the question names."""
    terms = list(dict.fromkeys(LATIN_TERM.findall(unicodedata.normalize("NFKC", evidence))))
    # A variant the question names itself is no sibling: "Top-k 和 Top-p 同时使用时先做哪一种" cited by a sentence
    # on Top-k alone is about one of the asked things.
    asked_parts = {_parts(n) for n in asked}
    parsed = [(t, _parts(t)) for t in terms]
    found = []
    for name in asked:
        want = _parts(name)
        if any(_names_exactly(p, want) for _, p in parsed):
            continue
        siblings = list(dict.fromkeys(t for t, p in parsed if p not in asked_parts and _is_sibling(p, want)))
        if siblings:
            found.append((name, siblings))
    return found
