"""Retrieval over several knowledge bases at once: each base is searched by its own retriever (dense, BM25, its
fusion, reranking and neighbour merging, every stage's score kept), and the per-base rankings are fused by
reciprocal rank (``retrieval.fusion.reciprocal_rank_fusion``, as a follow-up's phrasings are), which needs no
calibration between the bases' score scales. Every passage names its base (``ScoredChunk.base``).

One base is exactly that base's retriever. A base that cannot be searched is left out with a line in ``notices``
by whoever composes the selection (app/answer/base_selection.py); the others answer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from retrieval.fusion import reciprocal_rank_fusion
from retrieval.results import RetrievalResult, ScoredChunk
from retrieval.settings import RetrievalSettings

if TYPE_CHECKING:
    from ingest.embedding.embedder import Embedder


class BaseRetriever(Protocol):
    """A retriever over one base (``HybridRetriever``): its name on the passages, its embedder, its searches."""

    base: str
    embedder: Embedder

    def retrieve(self, query: str, top_k: int | None = None, rerank: bool | None = None) -> RetrievalResult: ...


class MultiBaseRetriever:
    def __init__(self, parts: Sequence[BaseRetriever], settings: RetrievalSettings,
                 problems: Sequence[str] = ()) -> None:
        """``parts``: one retriever per base, in the order the user chose them (ties in the fusion go to the first);
        ``problems``: one line per base of the selection that could not be opened (shown by the faces)."""
        if not parts:
            raise ValueError("a retriever over several bases needs at least one base")
        self.parts = list(parts)
        self.settings = settings
        self.problems = list(problems)

    @property
    def bases(self) -> list[str]:
        return [part.base for part in self.parts]

    @property
    def embedder(self) -> Embedder:
        # Every base of a selection is opened with the one embedder the face holds (each base's store checks it).
        return self.parts[0].embedder

    @property
    def notices(self) -> list[str]:
        """Bases left out, and what opening each base repaired, one line each."""
        repaired = [f"{part.base}: {n}" for part in self.parts for n in getattr(getattr(part, "kb", None),
                                                                                  "notices", [])]
        return self.problems + repaired

    def retrieve(self, query: str, top_k: int | None = None, rerank: bool | None = None) -> RetrievalResult:
        """The ``top_k`` best passages over every base: each base's own ``top_k``, fused by reciprocal rank (equal
        weights), passages with the same text in two bases shown once.

        The bases' lists are disjoint, so reciprocal rank alone interleaves them: each base's first passage ties
        with the other bases' first. Within a tie the passage with the higher comparable score goes first (the
        rerank score when reranked, else the dense cosine: one embedder scores every base), so the base that
        matches the question better leads each tier."""
        top_k = self.settings.top_k if top_k is None else top_k
        if len(self.parts) == 1:
            return self.parts[0].retrieve(query, top_k, rerank)
        results = [part.retrieve(query, top_k, rerank) for part in self.parts]
        rankings = {str(i): [((p.base, p.chunk.chunk_id), p.score) for p in result.passages]
                    for i, result in enumerate(results)}
        fused = dict(reciprocal_rank_fusion(rankings, self.settings.rrf_k))
        ranked = sorted((p for result in results for p in result.passages),
                        key=lambda p: (-fused[(p.base, p.chunk.chunk_id)], -_comparable_score(p)))
        shown: set[str] = set()
        passages = []
        for passage in ranked:
            key = " ".join(passage.text.split())
            if key not in shown:
                shown.add(key)
                passages.append(passage)
        timings: dict[str, float] = {}
        for result in results:
            for stage, seconds in result.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        # Each stage's score and rank stay as the passage's own base gave them; the list's order is the fusion's.
        return RetrievalResult(query=results[0].query, passages=passages[:top_k], timings=timings)


def _comparable_score(passage: ScoredChunk) -> float:
    """A score on the same scale in every base: the reranker's, else the dense cosine (a keyword-only hit has
    none and goes after those that do)."""
    for value in (passage.rerank_score, passage.dense_score):
        if value is not None:
            return value
    return -math.inf
