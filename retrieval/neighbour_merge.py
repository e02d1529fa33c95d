"""Widening a hit with the chunks around it, and dropping hits already shown inside another's context."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ingest.records import Chunk
from retrieval.results import ScoredChunk

NeighbourLookup = Callable[[Chunk, int], list[Chunk]]


def _spans_align(chunks: Sequence[Chunk]) -> bool:
    """True when the chunks index the same text (same page) with offsets matching their lengths."""
    return (len({c.page for c in chunks}) == 1
            and all(c.char_end - c.char_start == len(c.text) for c in chunks))


def join_chunks(chunks: Sequence[Chunk]) -> str:
    """Concatenate consecutive chunks in order, without repeating the overlap the chunker put between them."""
    if not chunks:
        return ""
    if not _spans_align(chunks):
        return "\n".join(c.text for c in chunks)
    text, end = chunks[0].text, chunks[0].char_end
    for chunk in chunks[1:]:
        skip = max(0, end - chunk.char_start)
        separator = "\n" if chunk.char_start > end else ""
        text += separator + chunk.text[skip:]
        end = max(end, chunk.char_end)
    return text


def widen(hit: Chunk, neighbours: Sequence[Chunk], max_chars: int) -> list[Chunk]:
    """The hit plus adjacent same-heading neighbours, nearest first (after, then before), within ``max_chars``."""
    same_section = [c for c in neighbours if c.heading_path == hit.heading_path and c.chunk_id != hit.chunk_id]
    chosen = [hit]
    size = len(hit.text)
    by_distance = sorted(same_section, key=lambda c: (abs(c.ordinal - hit.ordinal), c.ordinal < hit.ordinal))
    for chunk in by_distance:
        if size + len(chunk.text) > max_chars:
            continue
        ordinals = {c.ordinal for c in chosen}
        if chunk.ordinal - 1 in ordinals or chunk.ordinal + 1 in ordinals:
            chosen.append(chunk)
            size += len(chunk.text)
    return sorted(chosen, key=lambda c: c.ordinal)


def merge_and_dedupe(ranked: Sequence[ScoredChunk], top_k: int, lookup: NeighbourLookup | None,
                     window: int, max_chars: int) -> list[ScoredChunk]:
    """The first ``top_k`` passages of ``ranked`` whose chunk is not already part of an earlier passage's
    context and whose text is not a duplicate; with ``lookup``, each keeps its neighbours in ``context_text``."""
    shown_ids: set[int] = set()
    shown_texts: set[str] = set()
    result: list[ScoredChunk] = []
    for passage in ranked:
        if len(result) >= top_k:
            break
        chunk = passage.chunk
        key = " ".join(chunk.text.split())
        if chunk.chunk_id in shown_ids or key in shown_texts:
            continue
        shown_texts.add(key)
        members = [chunk]
        if lookup is not None and window > 0:
            candidates = [c for c in lookup(chunk, window) if c.chunk_id not in shown_ids]
            members = widen(chunk, candidates, max_chars)
            if len(members) > 1:
                passage.context_text = join_chunks(members)
        shown_ids.update(c.chunk_id for c in members)
        result.append(passage)
    return result
