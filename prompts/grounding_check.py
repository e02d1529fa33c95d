"""Check each answer sentence against the passages it cites: a support score per sentence, flagged when low."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from prompts.citations import parse_citations, remove_invalid_citations
from prompts.records import SentenceCheck
from prompts.sentences import split_sentences
from prompts.templates import PackedPassage


class SupportScorer(Protocol):
    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        """For each claim, how well the best of its evidence texts supports it (higher = better)."""
        ...


class _QueryEncoder(Protocol):
    def encode_queries(self, texts: list[str]) -> np.ndarray: ...


class EmbeddingSupportScorer:
    """Cosine similarity between a claim and each evidence sentence (max), with the retrieval embedder.

    Both sides are encoded as queries: the comparison is symmetric (sentence vs sentence), which is how e5-style
    models are meant to be used for similarity.
    """

    def __init__(self, embedder: _QueryEncoder) -> None:
        self._embedder = embedder

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        if not claims:
            return []
        texts = list(dict.fromkeys(t for group in evidence for t in group))
        if not texts:
            return [0.0] * len(claims)
        claim_vecs = self._embedder.encode_queries(list(claims))
        evidence_vecs = self._embedder.encode_queries(texts)
        row = {t: i for i, t in enumerate(texts)}
        sims = claim_vecs @ evidence_vecs.T
        return [float(max(sims[i, row[t]] for t in group)) if group else 0.0 for i, group in enumerate(evidence)]


class CrossEncoderSupportScorer:
    """Support from a sentence-transformers CrossEncoder (any local path or hub name), max over evidence texts."""

    def __init__(self, model_name: str, device: str = "cpu") -> None:
        from sentence_transformers import CrossEncoder

        self._model = CrossEncoder(model_name, device=device)

    def score(self, claims: Sequence[str], evidence: Sequence[Sequence[str]]) -> list[float]:
        pairs = [(claim, text) for claim, group in zip(claims, evidence) for text in group]
        if not pairs:
            return [0.0] * len(claims)
        flat = iter(self._model.predict(pairs).tolist())
        return [max((next(flat) for _ in group), default=0.0) for group in evidence]


def sentence_evidence(answer_text: str, packed: list[PackedPassage],
                      skip: Sequence[str] = ()) -> list[tuple[str, list[int], list[str]]]:
    """(claim, cited numbers, evidence sentences) per answer sentence worth checking. Sentences equal to an entry
    of ``skip`` (e.g. the refusal) are left out. A cited sentence's evidence is the sentences of the passages it
    cites; an uncited one's is all passages, so a claim with no citation is still checked."""
    by_number = {p.number: p for p in packed}
    valid = set(by_number)
    out = []
    for sentence in split_sentences(remove_invalid_citations(answer_text, valid)):
        if sentence in skip:
            continue
        claim = remove_invalid_citations(sentence, set()).strip()
        if not any(ch.isalnum() for ch in claim):
            continue  # a bare citation or punctuation left over from splitting
        cited = [n for n in parse_citations(sentence) if n in valid]
        sources = [by_number[n] for n in cited] if cited else packed
        out.append((claim, cited, [s for p in sources for s in split_sentences(p.text)]))
    return out


def check_answer(answer_text: str, packed: list[PackedPassage], scorer: SupportScorer, min_support: float,
                 skip: Sequence[str] = ()) -> list[SentenceCheck]:
    """One SentenceCheck per answer sentence worth checking (see sentence_evidence)."""
    items = sentence_evidence(answer_text, packed, skip)
    scores = scorer.score([claim for claim, _, _ in items], [evidence for _, _, evidence in items])
    return [SentenceCheck(sentence=claim, cited=cited, support_score=score, supported=score >= min_support)
            for (claim, cited, _), score in zip(items, scores)]
