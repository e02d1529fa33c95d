"""The result of retrieval: a chunk with the score of every stage that saw it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ingest.records import Chunk


@dataclass
class ScoredChunk:
    chunk: Chunk
    # Cosine similarity from the dense index (None when dense search did not return it).
    dense_score: float | None = None
    dense_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None
    fused_score: float | None = None
    fused_rank: int | None = None
    rerank_score: float | None = None
    # Text actually shown to the LLM: the chunk, possibly merged with neighbours from the same section.
    context_text: str | None = None
    # The name of the knowledge base the chunk is from ("" when the retriever was given none): chunk ids are
    # unique within one base only, and faces show it beside the file ("base · file p.N").
    base: str = ""

    @property
    def score(self) -> float:
        """The most refined score available: rerank, else fused, else dense."""
        for value in (self.rerank_score, self.fused_score, self.dense_score, self.bm25_score):
            if value is not None:
                return value
        return 0.0

    @property
    def text(self) -> str:
        return self.context_text or self.chunk.text


@dataclass
class RetrievalResult:
    """Ranked passages for one query, with the seconds each stage took (embed, dense, bm25, fuse, rerank, merge)."""

    query: str
    passages: list[ScoredChunk]
    timings: dict[str, float] = field(default_factory=dict)


def result_as_dict(result: RetrievalResult) -> dict:
    """The JSON form of a retrieval result (``python -m retrieval --json``, ``POST /v1/kb/retrieve`` in the
    HTTP server)."""
    passages = []
    for p in result.passages:
        item = asdict(p)
        item["chunk"]["heading"] = p.chunk.heading
        passages.append(item)
    return {"query": result.query, "passages": passages, "timings": result.timings}
