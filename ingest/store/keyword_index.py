"""BM25 keyword index over chunk texts, built once per knowledge-base generation and loaded by readers.

Stored with bm25s's own ``save`` (JSON vocabulary + numpy arrays, no pickle) beside ``chunk_ids.npy`` (row → chunk
id) and ``keyword_index.json`` (tokenizer options, so queries are cut exactly as the corpus was).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from ingest.settings import IndexSettings
from ingest.store.text_tokenizer import TokenizerOptions, tokenize

_META_FILE = "keyword_index.json"
_IDS_FILE = "chunk_ids.npy"
_BM25_DIR = "bm25s"
_FORMAT_VERSION = 1


class KeywordIndexError(Exception):
    """The keyword index folder is missing, incomplete or unreadable."""


def build_keyword_index(ids: Sequence[int], texts: Sequence[str], out_dir: Path,
                        settings: IndexSettings | None = None) -> None:
    """Tokenise ``texts`` and write a BM25 index for them into ``out_dir`` (created if needed)."""
    if len(ids) != len(texts):
        raise ValueError(f"build_keyword_index: {len(ids)} ids but {len(texts)} texts")
    settings = settings or IndexSettings()
    options = TokenizerOptions(cjk_bigrams=settings.bm25_cjk_bigrams)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / _IDS_FILE, np.asarray(ids, dtype=np.int64), allow_pickle=False)
    corpus_tokens = [tokenize(t, options) for t in texts]
    # bm25s cannot index a corpus without a single token (e.g. only stopwords): keyword search then finds nothing.
    searchable = any(corpus_tokens)
    if searchable:
        model = bm25s.BM25(k1=settings.bm25_k1, b=settings.bm25_b)
        model.index(corpus_tokens, show_progress=False)
        model.save(str(out_dir / _BM25_DIR))
    meta = {"format": _FORMAT_VERSION, "n_chunks": len(ids), "searchable": searchable,
            "tokenizer": options.to_dict(),
            "k1": settings.bm25_k1, "b": settings.bm25_b}
    (out_dir / _META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


class KeywordIndex:
    """A loaded BM25 index; ``search`` returns (chunk id, BM25 score), best first, only chunks sharing a token."""

    def __init__(self, model: bm25s.BM25 | None, chunk_ids: np.ndarray, options: TokenizerOptions):
        self._model = model
        self._chunk_ids = chunk_ids
        self._options = options

    def __len__(self) -> int:
        return len(self._chunk_ids)

    @classmethod
    def load(cls, dir: Path) -> KeywordIndex:
        dir = Path(dir)
        meta_path = dir / _META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            chunk_ids = np.load(dir / _IDS_FILE, allow_pickle=False)
            model = bm25s.BM25.load(str(dir / _BM25_DIR)) if meta.get("searchable", meta["n_chunks"]) else None
        except FileNotFoundError as exc:
            raise KeywordIndexError(f"{dir}: keyword index incomplete, missing {exc.filename}") from exc
        except (ValueError, KeyError, OSError) as exc:
            raise KeywordIndexError(f"{dir}: keyword index unreadable: {exc}") from exc
        if meta.get("format") != _FORMAT_VERSION or len(chunk_ids) != meta["n_chunks"]:
            raise KeywordIndexError(f"{meta_path}: unexpected format or chunk count; rebuild the knowledge base")
        return cls(model, chunk_ids, TokenizerOptions.from_dict(meta.get("tokenizer", {})))

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text, self._options)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        if self._model is None or k <= 0:
            return []
        token_ids = self._model.get_tokens_ids(self.tokenize(query))
        if not token_ids:
            return []
        scores = self._model.get_scores_from_ids(token_ids)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._chunk_ids[i]), float(scores[i])) for i in top if scores[i] > 0]
