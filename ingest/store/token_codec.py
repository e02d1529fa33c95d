"""Compression of contextual token vectors for the MaxSim reranker, with FAISS standalone codecs.

A chunk has ~190 token vectors of 384 floats (~290 KB in float32), too many to store for a whole knowledge base.
Small bases keep them as float16 (``SQfp16``, no training); once enough tokens are stored a product quantizer
(``PQ<m>``, m bytes per token) is trained on them, as ColBERT-style systems do. Codecs serialise to bytes so the
store can keep the one its codes were made with.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

FLOAT16 = "SQfp16"


@dataclass
class TokenCodec:
    """A FAISS index used only for ``sa_encode``/``sa_decode``; ``description`` is its factory string."""

    description: str
    index: faiss.Index

    @property
    def is_quantized(self) -> bool:
        return self.description != FLOAT16

    def encode(self, vectors: np.ndarray) -> bytes:
        return self.index.sa_encode(np.ascontiguousarray(vectors, dtype=np.float32)).tobytes()

    def decode(self, codes: bytes, n_tokens: int) -> np.ndarray:
        packed = np.frombuffer(codes, dtype=np.uint8).reshape(n_tokens, self.index.sa_code_size())
        return self.index.sa_decode(packed)

    def to_bytes(self) -> bytes:
        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, description: str, blob: bytes) -> "TokenCodec":
        return cls(description, faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8)))


def float16_codec(dimension: int) -> TokenCodec:
    return TokenCodec(FLOAT16, faiss.index_factory(dimension, FLOAT16))


def train_pq_codec(samples: np.ndarray, bytes_per_token: int, seed: int = 0) -> TokenCodec:
    """A product quantizer with ``bytes_per_token`` 8-bit sub-quantizers trained on ``samples`` (tokens, dim)."""
    dimension = samples.shape[1]
    if dimension % bytes_per_token:
        raise ValueError(f"token_pq_bytes={bytes_per_token} must divide the embedding dimension {dimension}")
    description = f"PQ{bytes_per_token}"
    # "np": no polysemous training, which the factory otherwise adds for PQ indexes; it only serves Hamming
    # search (never done here) and took ~90 s of the ~100 s training on 65k tokens.
    index = faiss.index_factory(dimension, f"{description}np")
    index.pq.cp.seed = seed
    index.train(np.ascontiguousarray(samples, dtype=np.float32))
    return TokenCodec(description, index)
