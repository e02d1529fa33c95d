"""The sentence-transformers Embedder.

Fast tests run the real embedder code over a tiny randomly initialised BERT saved as a real sentence-transformers
folder (the logic: prefixes, batching, windows, token vectors, caching, errors). Slow tests use the packaged
multilingual model for retrieval sanity in Chinese and across languages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.config import EmbedderSettings
from ingest.embedding.embedder import Embedder, EmbedderError
from ingest.embedding.factory import load_embedder
from ingest.embedding.openvino_ir import openvino_installed

WORDS = [f"w{i}" for i in range(40)]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
# Window of 8 tokens = [CLS] + 6 text tokens + [SEP].
WINDOW_SETTINGS = dict(query_prefix="q ", passage_prefix="p ", max_seq_length=8, batch_size=3)


def _build_tiny_model(folder: Path) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + ["q", "p"] + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    hf_dir = folder / "hf"
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                            sep_token="[SEP]", model_max_length=64).save_pretrained(hf_dir)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    BertModel(config).save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    st_dir = folder / "st"
    SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu").save(str(st_dir))
    return st_dir


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tiny_st(tiny_model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_dir), device="cpu", local_files_only=True)


needs_openvino = pytest.mark.skipif(not openvino_installed(), reason="openvino not installed")
# The tests that compare vectors to plain sentence-transformers run on every way an encoder is run: PyTorch,
# OpenVINO under sentence-transformers, and OpenVINO started from the IR without torch ("openvino-lean").
BOTH_BACKENDS = pytest.mark.parametrize("backend", [
    "torch", pytest.param("openvino", marks=needs_openvino), pytest.param("openvino-lean", marks=needs_openvino)])


def _embedder(model_dir: Path, tmp_path: Path, **overrides) -> Embedder:
    # float32 PyTorch unless a test asks otherwise: these tests compare vectors to plain encode() to 1e-5.
    options = {"dtype": "float32", "backend": "torch", **overrides}
    lean = options["backend"] == "openvino-lean"
    settings = EmbedderSettings(model=str(model_dir), **{**options, "backend": "openvino" if lean else
                                                         options["backend"]})
    if not lean:
        return load_embedder(settings, tmp_path)
    from ingest.embedding.openvino_embedder import OpenVinoEmbedder, load_openvino_embedder

    load_embedder(settings.replace(batch_size=97), tmp_path)  # a full load converts and writes the manifest
    embedder = load_openvino_embedder(settings, tmp_path)
    assert isinstance(embedder, OpenVinoEmbedder)
    return embedder


def test_outputs_are_normalised_float32_rows(tiny_model_dir: Path, tmp_path: Path) -> None:
    embedder = _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS)
    vectors = embedder.encode_passages(["w1 w2 w3", "w4", ""])
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dimension) == (str(tiny_model_dir), 32)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode_queries([]).shape == (0, 32)


@BOTH_BACKENDS
def test_short_text_matches_sentence_transformers_with_prefix(tiny_model_dir: Path, tiny_st, tmp_path: Path,
        backend: str) -> None:
    embedder = _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS, backend=backend)
    texts = ["w1 w2 w3", "w5 w6", "w7"]
    expected_passages = tiny_st.encode(["p " + t for t in texts], normalize_embeddings=True)
    expected_queries = tiny_st.encode(["q " + t for t in texts], normalize_embeddings=True)
    np.testing.assert_allclose(embedder.encode_passages(texts), expected_passages, atol=1e-5)
    np.testing.assert_allclose(embedder.encode_queries(texts), expected_queries, atol=1e-5)
    assert not np.allclose(expected_passages, expected_queries, atol=1e-3)


@BOTH_BACKENDS
def test_batch_size_and_padding_do_not_change_vectors(tiny_model_dir: Path, tmp_path: Path, backend: str) -> None:
    texts = ["w1 w2 w3 w4 w5", "w6", "w7 w8", "w9 w10 w11", "w12 w13 w14 w15 w16 w17 w18 w19 w20"]
    one = _embedder(tiny_model_dir, tmp_path, **{**WINDOW_SETTINGS, "batch_size": 1}, backend=backend)
    many = _embedder(tiny_model_dir, tmp_path, **{**WINDOW_SETTINGS, "batch_size": 16}, backend=backend)
    np.testing.assert_allclose(one.encode_passages(texts), many.encode_passages(texts), atol=1e-5)


@BOTH_BACKENDS
def test_long_text_is_token_weighted_mean_of_windows(tiny_model_dir: Path, tiny_st, tmp_path: Path,
        backend: str) -> None:
    from sentence_transformers import SentenceTransformer

    embedder = _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS, backend=backend)
    words = ["p"] + WORDS[:13]  # prefix + 13 words = 14 text tokens -> windows of 6, 6 and 2
    unnormalised = SentenceTransformer(modules=[tiny_st[0], tiny_st[1]], device="cpu")
    windows = [" ".join(words[start:start + 6]) for start in range(0, len(words), 6)]
    pooled = unnormalised.encode(windows)
    expected = (6 * pooled[0] + 6 * pooled[1] + 2 * pooled[2]) / 14
    expected /= np.linalg.norm(expected)
    got = embedder.encode_passages([" ".join(words[1:])])[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Not merely the first window (what truncation would give).
    assert float(got @ (pooled[0] / np.linalg.norm(pooled[0]))) < 0.9999


@BOTH_BACKENDS
def test_token_embeddings_cover_text_tokens_only(tiny_model_dir: Path, tiny_st, tmp_path: Path, backend: str) -> None:
    embedder = _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS, backend=backend)
    short, long = "w1 w2 w3", " ".join(WORDS[:13])
    vectors = embedder.token_embeddings([short, long], is_query=True)
    assert [v.shape for v in vectors] == [(4, 32), (14, 32)]  # "q" + words; no [CLS]/[SEP]/padding
    for v in vectors:
        assert v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    reference = tiny_st.encode("q " + short, output_value="token_embeddings").numpy()[1:-1]
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors[0], reference, atol=1e-5)


@BOTH_BACKENDS
def test_passage_tokens_come_with_their_vectors_and_query_tokens_are_not_recomputed(
        tiny_model_dir: Path, tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS, backend=backend)
    texts = ["w1 w2 w3", " ".join(WORDS[:13])]
    vectors, tokens = embedder.encode_passages_with_tokens(texts)
    np.testing.assert_allclose(vectors, embedder.encode_passages(texts), atol=1e-6)
    for got, expected in zip(tokens, embedder.token_embeddings(texts, is_query=False)):
        np.testing.assert_allclose(got, expected, atol=1e-6)

    fresh = embedder.token_embeddings(["w4 w5"], is_query=True)[0]
    embedder.encode_queries(["w4 w5"])

    def no_second_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model ran again over a query it had just embedded")

    monkeypatch.setattr(embedder, "_forward", no_second_pass)
    np.testing.assert_allclose(embedder.token_embeddings(["w4 w5"], is_query=True)[0], fresh, atol=1e-6)


def test_models_are_cached_per_process(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS)
    assert _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS) is first
    other = _embedder(tiny_model_dir, tmp_path, **{**WINDOW_SETTINGS, "batch_size": 7})
    assert other is not first and other._model is first._model


@BOTH_BACKENDS
def test_bfloat16_gives_float32_vectors_close_to_float32(tiny_model_dir: Path, tmp_path: Path, backend: str) -> None:
    texts = ["w1 w2 w3", " ".join(WORDS[:13])]
    full = _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS).encode_passages(texts)
    half = _embedder(tiny_model_dir, tmp_path, **WINDOW_SETTINGS, dtype="bfloat16",
                     backend=backend).encode_passages(texts)
    assert half.dtype == np.float32
    assert np.sum(full * half, axis=1).min() > 0.999


def test_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(EmbedderError, match="no-such-model"):
        load_embedder(EmbedderSettings(model=str(missing)), tmp_path)


def test_hub_model_is_not_downloaded_by_default(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match=r"'docqa-test/not-a-real-model' from the local cache"):
        load_embedder(EmbedderSettings(model="docqa-test/not-a-real-model"), tmp_path)


def test_window_too_small_for_special_tokens(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="max_seq_length 2"):
        _embedder(tiny_model_dir, tmp_path, max_seq_length=2)


# --- the packaged multilingual model ---

PASSAGES = [
    "长城是中国古代修建的军事防御工程，东起山海关，西到嘉峪关，绵延两万多公里。",
    "大熊猫生活在四川、陕西和甘肃的山林里，几乎只吃竹子，每天要进食十几个小时。",
    "光合作用是绿色植物利用阳光，把二氧化碳和水转化为葡萄糖并放出氧气的过程。",
    "地球绕太阳公转一圈大约需要三百六十五天，这就是一年的长度。",
    "茶起源于中国，最早作为药用，唐代以后饮茶之风逐渐普及到民间。",
]
QUESTIONS = [
    ("大熊猫平时吃什么？", 1),
    ("植物是怎样制造养分的？", 2),
    ("长城东边的起点在哪里？", 0),
    ("What do giant pandas eat?", 1),
    ("How long does it take the Earth to go around the Sun?", 3),
    ("Where did tea drinking originate?", 4),
]


@pytest.mark.slow
def test_packaged_model_finds_the_right_passage(real_embedder) -> None:
    passages = real_embedder.encode_passages(PASSAGES)
    queries = real_embedder.encode_queries([q for q, _ in QUESTIONS])
    assert passages.shape == (len(PASSAGES), 384) and real_embedder.dimension == 384
    best = (queries @ passages.T).argmax(axis=1)
    assert best.tolist() == [gold for _, gold in QUESTIONS]


@pytest.mark.slow
def test_packaged_model_token_vectors(real_embedder) -> None:
    vectors = real_embedder.token_embeddings(["大熊猫吃竹子", "x " * 600], is_query=False)
    assert vectors[0].shape[1] == 384 and 4 <= vectors[0].shape[0] <= 12
    assert vectors[1].shape[0] > 600  # a long text keeps the tokens of every window
    np.testing.assert_allclose(np.linalg.norm(vectors[1], axis=1), 1.0, atol=1e-5)
