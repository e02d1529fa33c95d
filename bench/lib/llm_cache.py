"""A Generator wrapper that stores what the LLM said, keyed by the exact prompt and decoding settings, so a
benchmark run again after a change to the checks only asks the model what it has not been asked before (a
generation on the 2-core CPU costs 10–30 s; a stored one nothing). Greedy decoding makes the stored text the one the
model would give again (up to the last bits of llama.cpp's sums, which the thread count can change).

Only complete generations are stored: a stream its caller stops early (the first pass stops at a refusal) is not.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

# The decoding settings that change what a greedy generation says.
# Key name -> GenerationSettings field ("top_k" is the stored keys' name of what is now sampling_top_k).
_DECODING = {"temperature": "temperature", "top_p": "top_p", "top_k": "sampling_top_k",
             "repetition_penalty": "repetition_penalty", "no_repeat_ngram_size": "no_repeat_ngram_size",
             "max_new_tokens": "max_new_tokens", "seed": "seed"}


def decoding_of(settings) -> dict:
    """The decoding settings of ``settings`` (GenerationSettings) that a stored generation is keyed by."""
    return {k: getattr(settings, field) for k, field in _DECODING.items()}


def _key(kind: str, name: str, payload: object) -> str:
    return hashlib.sha256(json.dumps([kind, name, payload], ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class CachedGenerator:
    """``generator`` with its ``stream`` and ``yes_probability`` answers kept in the SQLite file ``path``; every
    other attribute is the wrapped generator's. ``hits`` / ``misses`` count the calls answered from / not from
    the store."""

    def __init__(self, generator, path: Path) -> None:
        self._generator = generator
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS said (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __getattr__(self, name: str):
        return getattr(self._generator, name)

    def _get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM said WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _put(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO said VALUES (?, ?)", (key, value))
            self._db.commit()

    def stream(self, messages: list[dict], settings) -> Iterator[str]:
        key = _key("stream", self._generator.name, [messages, decoding_of(settings)])
        stored = self._get(key)
        if stored is not None:
            self.hits += 1
            pieces = json.loads(stored)
            yield from pieces
            return
        self.misses += 1
        pieces = []
        for piece in self._generator.stream(messages, settings):
            pieces.append(piece)
            yield piece
        self._put(key, json.dumps(pieces, ensure_ascii=False))

    def yes_probability(self, messages: list[dict], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        key = _key("yes", self._generator.name, [messages, list(yes), list(no)])
        stored = self._get(key)
        if stored is not None:
            self.hits += 1
            return float(stored)
        self.misses += 1
        p = self._generator.yes_probability(messages, yes, no)
        self._put(key, repr(p))
        return p
