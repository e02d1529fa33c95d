"""Lexical support: how many of an answer's content words actually occur in the passages it cites.

Embedding cosines are high for any on-topic text (0.88-0.92 for sentences the model invented about a term the
passages merely mention), so they cannot tell a grounded answer from an invented one. Word overlap can: an answer
copied or paraphrased from its passages reuses their words, an explanation from the model's own knowledge brings
new ones. Tokens are the keyword-search tokens (ingest/store/text_tokenizer.py: rjieba words + CJK bigrams + English
words + numbers, stopwords dropped), compared as sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ingest.store.text_tokenizer import tokenize
from prompts.grounding_check import sentence_evidence
from prompts.language import detect_language
from prompts.templates import PackedPassage


def covered_tokens(claim: str, evidence: Sequence[str]) -> tuple[int, int]:
    """(content tokens of ``claim`` found in ``evidence``, content tokens of ``claim``)."""
    claim_tokens = set(tokenize(claim))
    evidence_tokens = {t for text in evidence for t in tokenize(text)}
    return len(claim_tokens & evidence_tokens), len(claim_tokens)


@dataclass
class LexicalSupport:
    """Token-weighted support of a whole answer. ``score`` is None when no sentence could be checked (no content
    tokens, or every sentence is in another language than its passages: words cannot match across languages)."""

    covered: int
    total: int
    skipped_sentences: int

    @property
    def score(self) -> float | None:
        return self.covered / self.total if self.total else None


def answer_lexical_support(answer_text: str, packed: list[PackedPassage], zh_min_cjk_share: float,
                           skip: Sequence[str] = ()) -> LexicalSupport:
    """Covered / total content tokens over the answer's sentences, each sentence against the passages it cites
    (all passages when it cites none). Weighting by tokens lets a long invented explanation outweigh one short
    copied clause."""
    covered = total = skipped = 0
    for claim, _, evidence in sentence_evidence(answer_text, packed, skip):
        evidence_language = detect_language("".join(evidence), zh_min_cjk_share)
        if detect_language(claim, zh_min_cjk_share) != evidence_language:
            skipped += 1
            continue
        c, t = covered_tokens(claim, evidence)
        covered += c
        total += t
    return LexicalSupport(covered=covered, total=total, skipped_sentences=skipped)
