"""Vectors sampled around real embeddings, to grow a few thousand real chunks into 100k-1M for index benchmarks.

Why not uniform random vectors: they have no cluster structure, every point is about equally far from every
other, and ANN recall on them says nothing about recall on text embeddings.

How: each sampled vector is ``normalise(v + s * sigma * E_r sqrt(lambda_r) g)`` where ``v`` is a random real
passage vector, ``E_r``/``lambda_r`` are the top-``r`` principal directions/variances of the real passage
vectors, ``g`` is standard normal and ``s`` is drawn uniformly from [0.5, 1.5] per point (so densities vary).
The noise lies in the low-dimensional subspace along which real e5 vectors actually vary, so samples stay on the
"shape" of the real data instead of drifting into directions no text reaches. ``sigma`` is calibrated so that
the median cosine between a sample and its parent equals the median cosine between a real passage and its
nearest real neighbour: the sampled collection has the local density of the real one around every real point,
just many more points. Those dense, overlapping clouds make neighbour search harder, not easier, than the
real-only data, so recall measured on them is a conservative estimate.
"""

from __future__ import annotations

import numpy as np

PRINCIPAL_DIMS = 64
SCALE_RANGE = (0.5, 1.5)


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def real_nn_median_cosine(real: np.ndarray) -> float:
    sims = real @ real.T
    np.fill_diagonal(sims, -1.0)
    return float(np.median(sims.max(axis=1)))


class AroundRealSampler:
    """Draws vectors around the rows of ``real`` (L2-normalised), with noise shaped like the real data's spread."""

    def __init__(self, real: np.ndarray, seed: int = 0, principal_dims: int = PRINCIPAL_DIMS) -> None:
        self.real = real.astype(np.float32)
        centred = self.real - self.real.mean(axis=0)
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        std = sv[:principal_dims] / np.sqrt(len(real) - 1)
        self.basis = (vt[:principal_dims] * std[:, None]).astype(np.float32)  # (r, dim): E_r sqrt(lambda_r)
        self.rng = np.random.default_rng(seed)
        self.target_cosine = real_nn_median_cosine(self.real)
        self.sigma = self._calibrate()

    def _noisy(self, parents: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
        g = rng.standard_normal((len(parents), self.basis.shape[0]), dtype=np.float32)
        scale = rng.uniform(*SCALE_RANGE, size=(len(parents), 1)).astype(np.float32)
        return _normalise(parents + sigma * scale * (g @ self.basis))

    def _calibrate(self) -> float:
        """Bisect sigma so the median sample-to-parent cosine matches the real nearest-neighbour cosine."""
        lo, hi = 0.0, 10.0
        probe_rng = np.random.default_rng(12345)
        parents = self.real[probe_rng.integers(0, len(self.real), 4000)]
        for _ in range(30):
            mid = (lo + hi) / 2
            cos = np.median(np.sum(self._noisy(parents, mid, np.random.default_rng(1)) * parents, axis=1))
            lo, hi = (mid, hi) if cos > self.target_cosine else (lo, mid)
        return (lo + hi) / 2

    def sample(self, n: int, block: int = 100_000) -> np.ndarray:
        """``n`` sampled vectors (float32, L2-normalised)."""
        out = np.empty((n, self.real.shape[1]), dtype=np.float32)
        for start in range(0, n, block):
            stop = min(n, start + block)
            parents = self.real[self.rng.integers(0, len(self.real), stop - start)]
            out[start:stop] = self._noisy(parents, self.sigma, self.rng)
        return out

    def perturb(self, vectors: np.ndarray) -> np.ndarray:
        """Each of ``vectors`` moved by the same calibrated noise (used for noisy query sets)."""
        return self._noisy(vectors.astype(np.float32), self.sigma, self.rng)


def corpus_of_size(real: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, AroundRealSampler]:
    """All real vectors followed by ``n - len(real)`` sampled ones."""
    sampler = AroundRealSampler(real, seed=seed)
    extra = sampler.sample(max(0, n - len(real)))
    return np.concatenate([real.astype(np.float32), extra])[:n], sampler
