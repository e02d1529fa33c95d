"""The token-vector store (float16, then product-quantised) and MaxSim scoring over stored token vectors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ingest.store.text_keyed_sqlite import text_hash
from ingest.store.token_codec import train_pq_codec
from ingest.store.token_store import TokenVectorStore
from retrieval.reranker import MaxSimReranker, maxsim_scores

DIM = 32


def _tokens(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    """Unit token vectors clustered around a few centres, like contextual embeddings (not uniform noise)."""
    picks = centres[rng.integers(0, len(centres), n)] + 0.15 * rng.standard_normal((n, DIM))
    return (picks / np.linalg.norm(picks, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture()
def corpus() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, DIM))
    return {f"passage {i}": _tokens(rng, int(rng.integers(5, 60)), centres) for i in range(120)}


def test_float16_round_trip_and_missing(tmp_path: Path, corpus: dict[str, np.ndarray]) -> None:
    store = TokenVectorStore.open(tmp_path / "t.sqlite3", "emb", DIM)
    texts = list(corpus)[:10]
    store.put_many(texts, [corpus[t] for t in texts])
    assert store.missing(list(corpus)[:12]) == list(corpus)[10:12]
    reader = TokenVectorStore.open_readonly(tmp_path / "t.sqlite3", "emb", DIM)
    assert reader is not None
    got = reader.get_many(list(corpus)[:12])
    assert len(got) == 10
    for text in texts:
        np.testing.assert_allclose(got[text_hash(text)], corpus[text], atol=1e-3)
    # Another embedder's key sees nothing.
    other = TokenVectorStore.open_readonly(tmp_path / "t.sqlite3", "other", DIM)
    assert other is not None and other.get_many(texts) == {}


def test_quantizes_once_large_enough_and_keeps_maxsim_ranking(tmp_path: Path,
                                                             corpus: dict[str, np.ndarray]) -> None:
    store = TokenVectorStore.open(tmp_path / "t.sqlite3", "emb", DIM)
    texts = list(corpus)
    total = sum(len(v) for v in corpus.values())
    store.put_many(texts, [corpus[t] for t in texts])
    assert not store.quantize_if_large(total + 1, 8, 100_000)  # not enough tokens yet
    assert store.quantize_if_large(total, 8, 100_000)
    assert not store.quantize_if_large(total, 8, 100_000)  # already quantised
    reader = TokenVectorStore.open_readonly(tmp_path / "t.sqlite3", "emb", DIM)
    assert reader is not None
    decoded = reader.get_many(texts)
    cosines = np.concatenate([np.sum(decoded[text_hash(t)] * corpus[t], axis=1)
                              / np.linalg.norm(decoded[text_hash(t)], axis=1) for t in texts])
    assert cosines.mean() > 0.9
    # A query made of one passage's tokens still ranks that passage first against the decoded vectors.
    rng = np.random.default_rng(1)
    hits = 0
    for target in rng.choice(len(texts), 20, replace=False):
        query = corpus[texts[target]][:4]
        exact = maxsim_scores(query, [corpus[t] for t in texts])
        approx = maxsim_scores(query, [decoded[text_hash(t)] for t in texts])
        hits += int(np.argmax(approx) == np.argmax(exact))
    assert hits >= 18
    # New rows after quantisation use the trained codec.
    store.put_many(["late"], [corpus[texts[0]]])
    assert text_hash("late") in reader.get_many(["late"])


def test_retain_drops_passages_no_longer_live(tmp_path: Path, corpus: dict[str, np.ndarray]) -> None:
    store = TokenVectorStore.open(tmp_path / "t.sqlite3", "emb", DIM)
    texts = list(corpus)[:6]
    store.put_many(texts, [corpus[t] for t in texts])
    assert store.retain(texts[:2]) == 4
    assert store.missing(texts) == texts[2:]


def test_reader_is_consistent_while_the_writer_requantizes(tmp_path: Path, corpus: dict[str, np.ndarray]) -> None:
    path = tmp_path / "t.sqlite3"
    store = TokenVectorStore.open(path, "emb", DIM)
    texts = list(corpus)
    store.put_many(texts, [corpus[t] for t in texts])
    reader = TokenVectorStore.open_readonly(path, "emb", DIM)
    assert reader is not None
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                got = reader.get_many(texts)
                assert len(got) == len(texts)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    store.quantize_if_large(0, 8, 100_000)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []


def test_readonly_open_of_a_missing_or_foreign_file(tmp_path: Path) -> None:
    assert TokenVectorStore.open_readonly(tmp_path / "none.sqlite3", "emb", DIM) is None
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    assert TokenVectorStore.open_readonly(junk, "emb", DIM) is None


def test_pq_needs_a_divisor_of_the_dimension() -> None:
    with pytest.raises(ValueError, match="token_pq_bytes=5"):
        train_pq_codec(np.zeros((300, DIM), np.float32), 5)


def test_maxsim_scores_match_the_definition() -> None:
    rng = np.random.default_rng(2)
    query = rng.standard_normal((3, DIM)).astype(np.float32)
    passages = [rng.standard_normal((n, DIM)).astype(np.float32) for n in (4, 0, 7)]
    scores = maxsim_scores(query, passages)
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    assert scores[1] == 0.0
    for passage, score in zip((passages[0], passages[2]), (scores[0], scores[2])):
        assert score == pytest.approx(float((unit(query) @ unit(passage).T).max(axis=1).mean()), abs=1e-6)


class _CountingTokens:
    """Token vectors by text for the reranker; counts how many passages it had to encode."""

    name = "count"
    dimension = DIM

    def __init__(self, corpus: dict[str, np.ndarray]):
        self.corpus = corpus
        self.encoded: list[str] = []

    def token_embeddings(self, texts: list[str], is_query: bool) -> list[np.ndarray]:
        if not is_query:
            self.encoded.extend(texts)
        return [self.corpus[t] for t in texts]


def test_reranker_reads_stored_passages_and_encodes_only_the_rest(tmp_path: Path,
                                                                  corpus: dict[str, np.ndarray]) -> None:
    texts = list(corpus)[:8]
    store = TokenVectorStore.open(tmp_path / "t.sqlite3", "emb", DIM)
    store.put_many(texts[:5], [corpus[t] for t in texts[:5]])
    embedder = _CountingTokens(corpus)
    reader = TokenVectorStore.open_readonly(tmp_path / "t.sqlite3", "emb", DIM)
    with_store = MaxSimReranker(embedder, reader).score(texts[3], texts)  # type: ignore[arg-type]
    assert embedder.encoded == texts[5:]
    live = MaxSimReranker(_CountingTokens(corpus)).score(texts[3], texts)  # type: ignore[arg-type]
    np.testing.assert_allclose(with_store, live, atol=2e-3)
    assert int(np.argmax(with_store)) == 3
