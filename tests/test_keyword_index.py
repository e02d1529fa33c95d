"""Keyword tokenizer and BM25 index: tokens, persistence without pickle, ranking, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ingest.settings import IndexSettings
from ingest.store.keyword_index import (
    KeywordIndex,
    KeywordIndexError,
    build_keyword_index,
)
from ingest.store.text_tokenizer import TokenizerOptions, tokenize

TEXTS = [
    "检索增强生成（RAG）把文档检索和文本生成结合起来。",
    "这个模型的上下文窗口为 4096 个 token。",
    "Transformer models rely on self-attention.",
    "量化把模型权重从 16 位压缩到 4 位，显存占用随之下降。",
]
IDS = [101, 202, 303, 404]


def test_tokenizer_mixes_chinese_words_english_and_numbers() -> None:
    tokens = tokenize("GPT-4 的上下文窗口是4096个Token。", TokenizerOptions(cjk_bigrams=False))
    assert "gpt" in tokens and "4" in tokens and "4096" in tokens and "token" in tokens
    assert "上下文" in tokens and "窗口" in tokens
    assert "的" not in tokens and "。" not in tokens


def test_tokenizer_splits_letters_from_digits_and_normalises_width() -> None:
    assert tokenize("gpt4") == tokenize("GPT-4") == ["gpt", "4"]
    assert tokenize("ＢＥＲＴ") == ["bert"]
    assert tokenize("version 3.5") == ["version", "3.5"]


def test_tokenizer_drops_english_stopwords_and_punctuation() -> None:
    assert tokenize("What is the context window?!") == ["context", "window"]


def test_bigrams_only_when_enabled() -> None:
    with_bigrams = tokenize("臺灣的資料庫", TokenizerOptions(cjk_bigrams=True))
    without = tokenize("臺灣的資料庫", TokenizerOptions(cjk_bigrams=False))
    assert "#資料" in with_bigrams and not any(t.startswith("#") for t in without)


@pytest.fixture()
def index_dir(tmp_path: Path) -> Path:
    build_keyword_index(IDS, TEXTS, tmp_path / "bm25")
    return tmp_path / "bm25"


def test_search_ranks_the_chunk_with_the_rare_term_first(index_dir: Path) -> None:
    index = KeywordIndex.load(index_dir)
    assert index.search("上下文窗口有多少 token", 3)[0][0] == 202
    assert index.search("RAG 是什么", 3)[0][0] == 101
    assert index.search("self-attention", 3)[0][0] == 303
    assert index.search("4 位量化", 3)[0][0] == 404


def test_search_returns_only_matching_chunks_best_first(index_dir: Path) -> None:
    hits = KeywordIndex.load(index_dir).search("模型", 10)
    assert {cid for cid, _ in hits} == {202, 404}
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert KeywordIndex.load(index_dir).search("的 了 是", 5) == []
    assert KeywordIndex.load(index_dir).search("模型", 0) == []


def test_index_is_stored_without_pickle(index_dir: Path) -> None:
    for path in index_dir.rglob("*.npy"):
        np.load(path, allow_pickle=False)
    for path in index_dir.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
    assert not list(index_dir.rglob("*.pkl")) and not list(index_dir.rglob("*.pickle"))


def test_settings_choose_the_tokenizer_stored_with_the_index(tmp_path: Path) -> None:
    build_keyword_index(IDS, TEXTS, tmp_path / "kw", IndexSettings(bm25_cjk_bigrams=False))
    meta = json.loads((tmp_path / "kw" / "keyword_index.json").read_text(encoding="utf-8"))
    assert meta["tokenizer"]["cjk_bigrams"] is False
    assert KeywordIndex.load(tmp_path / "kw").tokenize("資料庫") == tokenize("資料庫", TokenizerOptions(False))


def test_empty_corpus_gives_an_empty_index(tmp_path: Path) -> None:
    build_keyword_index([], [], tmp_path / "empty")
    index = KeywordIndex.load(tmp_path / "empty")
    assert len(index) == 0 and index.search("anything", 5) == []


def test_mismatched_inputs_and_missing_files_are_clear_errors(tmp_path: Path, index_dir: Path) -> None:
    with pytest.raises(ValueError, match="2 ids but 1 texts"):
        build_keyword_index([1, 2], ["only one"], tmp_path / "bad")
    with pytest.raises(KeywordIndexError, match="missing"):
        KeywordIndex.load(tmp_path / "nowhere")
    (index_dir / "chunk_ids.npy").unlink()
    with pytest.raises(KeywordIndexError, match=str(index_dir)):
        KeywordIndex.load(index_dir)


def test_corpus_without_any_token_gives_an_empty_index(tmp_path: Path) -> None:
    # A document of stopwords only ("的") must not break the ingest commit that builds this index.
    build_keyword_index([7], ["的"], tmp_path / "kw")
    index = KeywordIndex.load(tmp_path / "kw")
    assert len(index) == 1
    assert index.search("的", 5) == []
