"""chunk_document: structure-first splitting with exact offsets, bounded sizes and nothing lost."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from shared_data import SHARED_DIR

from app.config import ChunkingSettings, LimitSettings
from ingest.chunking.chunker import chunk_document
from ingest.chunking.normalize import normalize_text
from ingest.chunking.text_structure import split_sentences
from ingest.loaders.document_loader import load_document
from ingest.records import ChunkDraft, LoadedDocument, PageText
from ingest.testing.documents import SAMPLE_DIR

SEEDS = SHARED_DIR / "seeds"


def doc_of(text: str, file_type: str = "markdown") -> LoadedDocument:
    return LoadedDocument(path="t.md", content_hash="h", pages=[PageText(normalize_text(text))], file_type=file_type)


def check_invariants(doc: LoadedDocument, chunks: list[ChunkDraft], settings: ChunkingSettings) -> None:
    """Offsets exact, sizes bounded, ordinals sequential, every non-space character of every page covered."""
    pages = {p.page: p.text for p in doc.pages}
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    covered = {page: [False] * len(text) for page, text in pages.items()}
    for c in chunks:
        text = pages[c.page]
        body = text[c.char_start:c.char_end]
        assert c.text == body or c.text.endswith("\n" + body), (c.char_start, c.text[:40])
        assert c.text == c.text.rstrip() and not c.text.startswith("\n")  # code keeps its first indent
        assert len(c.text) <= settings.chunk_size + settings.min_chunk_chars
        covered[c.page][c.char_start:c.char_end] = [True] * (c.char_end - c.char_start)
    for page, text in pages.items():
        lost = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[page][i]]
        assert not lost, f"page {page}: text lost at {lost[:5]}: {text[lost[0]:lost[0] + 30]!r}"


def test_heading_paths() -> None:
    md = ("# 安装\n\n安装前请阅读本节的全部内容。\n\n## 依赖\n\n需要 Python 3.11 和 faiss-cpu 两个依赖。\n\n"
          "## 配置\n\n配置文件位于数据目录下的 config.toml。\n\n# 使用\n\n运行 docqa ask 提问，答案会附带引用。")
    chunks = chunk_document(doc_of(md), ChunkingSettings(chunk_size=60, chunk_overlap=0, min_chunk_chars=5))
    assert [c.heading_path for c in chunks] == [["安装"], ["安装", "依赖"], ["安装", "配置"], ["使用"]]
    assert chunks[1].text == "## 依赖\n\n需要 Python 3.11 和 faiss-cpu 两个依赖。"


def test_small_sections_are_not_split_and_headings_start_chunks() -> None:
    md = "# A\n\nalpha text here.\n\n# B\n\nbeta text here."
    chunks = chunk_document(doc_of(md), ChunkingSettings(chunk_size=400, chunk_overlap=50, min_chunk_chars=5))
    assert [c.text for c in chunks] == ["# A\n\nalpha text here.", "# B\n\nbeta text here."]


def test_plain_text_chinese_numbered_headings() -> None:
    text = "一、什么是嵌入？\n\n嵌入把文字映射成向量。\n\n二、为什么归一化？\n\n归一化以后内积等于余弦相似度。"
    chunks = chunk_document(doc_of(text, "text"), ChunkingSettings(chunk_size=30, chunk_overlap=0,
                                                                   min_chunk_chars=5))
    assert [c.heading_path for c in chunks] == [["一、什么是嵌入？"], ["二、为什么归一化？"]]


def test_chinese_chunks_end_at_sentence_ends() -> None:
    sentences = [f"第{i}句话讲的是模型在第{i}种情况下的表现，内容比较长一些。" for i in range(1, 30)]
    settings = ChunkingSettings(chunk_size=100, chunk_overlap=0, min_chunk_chars=10)
    doc = doc_of("".join(sentences))
    chunks = chunk_document(doc, settings)
    assert len(chunks) > 5
    assert all(c.text.endswith("。") for c in chunks)
    check_invariants(doc, chunks, settings)


def test_english_sentences_not_split_at_decimals_abbreviations_urls() -> None:
    text = ("Set top-p to 0.95, e.g. for creative tasks. See https://example.com/docs/v1.2 for details. "
            "Dr. Hu et al. proposed LoRA in 2021! Is alpha 2 × r? Yes.")
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == [
        "Set top-p to 0.95, e.g. for creative tasks.", "See https://example.com/docs/v1.2 for details.",
        "Dr. Hu et al. proposed LoRA in 2021!", "Is alpha 2 × r?", "Yes."]


def test_chinese_sentence_enders() -> None:
    text = "温度是什么？它控制随机性！取值多少；通常0.7。结束……好的"
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == ["温度是什么？", "它控制随机性！", "取值多少；", "通常0.7。", "结束……", "好的"]


def test_overlap_is_whole_previous_sentences() -> None:
    sentences = [f"Sentence number {i} talks about retrieval." for i in range(40)]
    settings = ChunkingSettings(chunk_size=200, chunk_overlap=90, min_chunk_chars=10)
    doc = doc_of(" ".join(sentences))
    chunks = chunk_document(doc, settings)
    check_invariants(doc, chunks, settings)
    text = doc.pages[0].text
    starts = {text.index(s) for s in sentences}
    for prev, nxt in zip(chunks, chunks[1:]):
        overlap = prev.char_end - nxt.char_start
        assert 0 < overlap <= settings.chunk_overlap
        assert nxt.char_start in starts  # overlap begins at a sentence start


def test_overlap_falls_back_to_a_clause_for_long_chinese_sentences() -> None:
    sentence = "大模型在推理阶段会根据温度参数调整概率分布的形状，温度越低结果越确定，温度越高结果越多样。"
    settings = ChunkingSettings(chunk_size=120, chunk_overlap=20, min_chunk_chars=10)
    doc = doc_of(sentence * 8)
    chunks = chunk_document(doc, settings)
    check_invariants(doc, chunks, settings)
    assert chunks[1].text.startswith("温度越低结果越确定")
    assert chunks[0].char_end - chunks[1].char_start <= settings.chunk_overlap


def test_big_table_split_by_rows_with_header_repeated() -> None:
    header = "| 参数 | 含义 | 默认值 |\n| --- | --- | --- |"
    rows = [f"| param_{i} | 第{i}个参数的含义说明 | {i}.0 |" for i in range(30)]
    md = "# 参数表\n\n" + header + "\n" + "\n".join(rows) + "\n\n表后的一段说明文字。"
    settings = ChunkingSettings(chunk_size=200, chunk_overlap=40, min_chunk_chars=10)
    doc = doc_of(md)
    chunks = chunk_document(doc, settings)
    check_invariants(doc, chunks, settings)
    table_chunks = [c for c in chunks if "param_" in c.text]
    assert len(table_chunks) > 3
    seen = []
    for c in table_chunks:
        body_lines = c.text.split("\n")
        assert "\n".join(body_lines[body_lines.index("| 参数 | 含义 | 默认值 |"):][:2]) == header
        seen += [line for line in body_lines if line.startswith("| param_")]
        assert c.heading_path == ["参数表"]
    assert seen == rows  # every row exactly once, in order, never cut


def test_small_table_stays_whole() -> None:
    md = "说明。\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n| 3 | 4 |"
    chunks = chunk_document(doc_of(md), ChunkingSettings(chunk_size=400, chunk_overlap=0, min_chunk_chars=1))
    assert len(chunks) == 1 and chunks[0].text.endswith("| 3 | 4 |")


def test_code_fence_split_only_at_line_ends() -> None:
    code = "\n".join(f"    value_{i} = compute(value_{i - 1}, step={i})" for i in range(1, 40))
    md = f"## 示例\n\n```python\n{code}\n```"
    settings = ChunkingSettings(chunk_size=300, chunk_overlap=50, min_chunk_chars=10)
    doc = doc_of(md)
    chunks = chunk_document(doc, settings)
    check_invariants(doc, chunks, settings)
    text = doc.pages[0].text
    assert len(chunks) > 3
    for c in chunks:
        assert c.char_end == len(text) or text[c.char_end] == "\n"
        assert c.char_start == 0 or text[c.char_start - 1] == "\n"


def test_hard_split_of_text_without_boundaries() -> None:
    settings = ChunkingSettings(chunk_size=100, chunk_overlap=20, min_chunk_chars=10)
    doc = doc_of("模" * 1050)
    chunks = chunk_document(doc, settings)
    check_invariants(doc, chunks, settings)
    assert all(len(c.text) <= 100 for c in chunks)


def test_tiny_tail_is_merged_into_neighbour() -> None:
    text = "这是一段足够长的正文，用来填满第一个块的大部分空间，长度大约五十个字符左右吧。\n\n短尾。"
    settings = ChunkingSettings(chunk_size=50, chunk_overlap=0, min_chunk_chars=10)
    chunks = chunk_document(doc_of(text), settings)
    assert len(chunks) == 1 and chunks[0].text.endswith("短尾。")


def test_chunks_never_cross_pages() -> None:
    doc = LoadedDocument(path="p.pdf", content_hash="h", file_type="pdf", pages=[
        PageText("第一页的内容。" * 30, page=1), PageText("", page=2), PageText("第三页只有一句话，但足够长以成为一个块。", page=3)])
    settings = ChunkingSettings(chunk_size=100, chunk_overlap=20, min_chunk_chars=10)
    chunks = chunk_document(doc, settings)
    check_invariants(doc, chunks, settings)
    assert {c.page for c in chunks} == {1, 3}
    assert chunks[-1].page == 3 and chunks[-1].char_start == 0


def sample_docs(folder: Path) -> list[LoadedDocument]:
    return [load_document(p, LimitSettings()) for p in sorted(folder.iterdir())
            if p.suffix in (".txt", ".md", ".pdf")]


def test_sample_corpus_size_and_invariants() -> None:
    settings = ChunkingSettings()
    total = 0
    for doc in sample_docs(SAMPLE_DIR):
        chunks = chunk_document(doc, settings)
        check_invariants(doc, chunks, settings)
        total += len(chunks)
    assert 30 <= total <= 60  # small enough to ingest in well under a minute


@pytest.mark.skipif(not SEEDS.is_dir(), reason="seed corpus not on this machine")
@pytest.mark.parametrize("settings", [ChunkingSettings(), ChunkingSettings(chunk_size=200, chunk_overlap=30,
                                                                             min_chunk_chars=20)])
def test_seed_documents(settings: ChunkingSettings) -> None:
    for doc in sample_docs(SEEDS):
        chunks = chunk_document(doc, settings)
        check_invariants(doc, chunks, settings)
        joined = "\n".join(c.text for c in chunks)
        text = doc.pages[0].text
        # Every sentence that fits in a chunk appears whole in some chunk (independent split on enders).
        for sentence in re.split(r"(?<=[。！？；…!?;])|\n", text):
            sentence = sentence.strip()
            if sentence and len(sentence) <= settings.chunk_size:
                assert sentence in joined, sentence


FRAGMENTS = [
    "# 标题", "## 子标题 二", "### Deep heading", "这是一句中文。", "另一句很长的中文句子，包含逗号、顿号和分号；还有问号？",
    "An English sentence, e.g. with 3.14 inside.", "Dr. Who went to https://x.y/z.html today!", "\n\n",
    "```\ncode line one\n    indented line two\n```", "一、中文标题", "- 列表项一\n- 列表项二", "没有标点的很长很长的文字" * 10,
    "x" * 700, "   ", "\t缩进的句子。",
]


def test_random_documents_keep_the_invariants() -> None:
    """Seeded random mixtures of every structure, sizes from tiny to normal: offsets exact, nothing lost, bounded."""
    rng = random.Random(7)
    for _ in range(400):
        table = "| a | b |\n| --- | --- |\n" + "\n".join(f"| r{i} | 值{i}值值值 |" for i in range(rng.randint(1, 30)))
        parts = FRAGMENTS + [table]
        text = "".join(rng.choice(parts) + rng.choice(["", "\n", "\n\n", " "]) for _ in range(rng.randint(1, 40)))
        size = rng.randint(40, 500)
        settings = ChunkingSettings(chunk_size=size, chunk_overlap=rng.randint(0, size // 3),
                                    min_chunk_chars=rng.randint(1, 40))
        doc = doc_of(text, rng.choice(["markdown", "text"]))
        if doc.pages[0].text.strip():
            check_invariants(doc, chunk_document(doc, settings), settings)
