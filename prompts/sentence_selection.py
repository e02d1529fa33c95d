"""The sentences of a passage that bear on the question, with their neighbours, as an excerpt with its offsets.

Prompt evaluation is most of the wait before the first answer token on a CPU (~9 ms per prompt token on 2 cores),
and a 400-character chunk usually answers a question in one or two of its sentences. Sentences are scored by the
question's keyword-search tokens they contain (ingest/store/text_tokenizer.py: jieba words, CJK bigrams, English
words, numbers, stopwords dropped), so the choice is cheap and needs no model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.store.text_tokenizer import tokenize
from prompts.sentences import sentence_spans

# Joins two kept runs of sentences that are not adjacent in the passage: the model sees that text was left out.
GAP = " … "


@dataclass(frozen=True)
class Excerpt:
    """Kept text of a passage: ``text`` is what the model sees (runs joined by ``GAP``); ``spans`` are the runs'
    (start, end) character offsets in the passage text, in order, so the page can highlight them in place."""

    text: str
    spans: tuple[tuple[int, int], ...]


def question_tokens(question: str) -> set[str]:
    return set(tokenize(question))


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Consecutive sentence indices grouped into (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def excerpt_of(text: str, spans: list[tuple[int, int]], kept: list[int]) -> Excerpt:
    """The excerpt made of sentences ``kept`` (indices into ``spans``) of ``text``."""
    pieces, offsets = [], []
    for first, last in _runs(kept):
        start, end = spans[first][0], spans[last][1]
        # Offsets point at the stripped text so a highlight does not start on a blank.
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            pieces.append(text[start:end])
            offsets.append((start, end))
    return Excerpt(GAP.join(pieces), tuple(offsets))


def ranked_sentences(text: str, spans: list[tuple[int, int]], wanted: set[str]) -> list[int]:
    """Sentence indices by how many of the question's tokens they hold (most first, earlier first on ties);
    sentences holding none are left out."""
    scores = [len(wanted & set(tokenize(text[a:b]))) for a, b in spans]
    return sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-scores[i], i))


def select_excerpts(text: str, wanted: set[str], focus: int, neighbours: int) -> list[Excerpt]:
    """Candidate excerpts of ``text`` from the richest to the leanest: the ``focus`` best-matching sentences
    with ``neighbours`` sentences either side, then fewer neighbours, then fewer focus sentences — the packer takes
    the first that fits its budget. A passage where no sentence matches (retrieved for its meaning) starts from
    its opening sentences."""
    spans = sentence_spans(text)
    if not spans:
        return []
    ranked = ranked_sentences(text, spans, wanted) or list(range(len(spans)))
    candidates: list[Excerpt] = []
    for n_focus in range(max(1, focus), 0, -1):
        for n_neigh in range(neighbours, -1, -1):
            kept = [j for i in ranked[:n_focus]
                    for j in range(max(0, i - n_neigh), min(len(spans), i + n_neigh + 1))]
            excerpt = excerpt_of(text, spans, kept)
            if excerpt.text and excerpt not in candidates:
                candidates.append(excerpt)
    return candidates
