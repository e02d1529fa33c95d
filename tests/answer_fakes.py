"""Small fakes for answer-side unit tests: a retriever with fixed passages, a scripted generator, a
character-bigram embedder. Real components are exercised in the slow end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.records import Chunk
from retrieval.results import RetrievalResult, ScoredChunk


def scored(text: str, chunk_id: int = 1, dense: float | None = 0.9, source: str = "docs/note.md",
           page: int | None = None, heading: list[str] | None = None) -> ScoredChunk:
    chunk = Chunk(chunk_id=chunk_id, doc_id=f"d{chunk_id}", source=source, text=text, ordinal=0, page=page,
                  heading_path=heading or [])
    return ScoredChunk(chunk=chunk, dense_score=dense, dense_rank=chunk_id)


@dataclass
class FakeRetriever:
    passages: list[ScoredChunk]
    calls: list[str] = field(default_factory=list)
    # The number of passages asked for by each call (None = the configured one).
    top_ks: list[int | None] = field(default_factory=list)

    def retrieve(self, query: str, top_k: int | None = None, rerank: bool | None = None) -> RetrievalResult:
        self.calls.append(query)
        self.top_ks.append(top_k)
        return RetrievalResult(query=query, passages=list(self.passages), timings={"total": 0.0})


class ScriptedGenerator:
    """Yields a fixed answer in pieces (given a list: one per call, the last repeated); counts characters as
    tokens; records the messages it was given."""

    name = "scripted"

    def __init__(self, answer: str | list[str], n_ctx: int = 4096) -> None:
        self.answers = [answer] if isinstance(answer, str) else list(answer)
        self.n_ctx = n_ctx
        self.calls: list[list[dict]] = []

    def stream(self, messages, settings):
        answer = self.answers[min(len(self.calls), len(self.answers) - 1)]
        self.calls.append(messages)
        for i in range(0, len(answer), 3):
            yield answer[i:i + 3]

    def count_tokens(self, text: str) -> int:
        return len(text)

    def count_prompt_tokens(self, messages) -> int:
        return sum(len(m["content"]) + 4 for m in messages)



