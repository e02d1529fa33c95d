"""normalize_text: Unicode forms, PDF artefacts, whitespace, control characters; Markdown left intact."""

from __future__ import annotations

import pytest

from ingest.chunking.normalize import normalize_text, unwrap_pdf_lines


@pytest.mark.parametrize("raw, expected", [
    ("⼤语⾔模型⽤于⽣成", "大语言模型用于生成"),  # Kangxi radicals (NFKC)
    ("常⻅问题⻅第3⻚", "常见问题见第3页"),  # radicals-supplement code points NFKC misses (table)
    ("ＬｏＲＡ的秩取８", "LoRA的秩取8"),  # full-width letters and digits
    ("ﬁne-tuning", "fine-tuning"),  # ligature
])
def test_compatibility_characters(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_chinese_punctuation_stays_full_width() -> None:
    text = "注意：温度（temperature）越高，输出越发散！对吗？是的；……"
    assert normalize_text(text) == text


@pytest.mark.parametrize("raw, expected", [
    ("一类 深度学习 模型", "一类深度学习模型"),
    ("大模型\t参数", "大模型参数"),
    ("使用 LoRA 微调 7B 模型", "使用 LoRA 微调 7B 模型"),  # spaces next to Latin text are real
    ("结果如下， 见表", "结果如下，见表"),
    ("中文\u3000全角空格", "中文全角空格"),
])
def test_spaces_between_chinese_characters(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_line_endings_blank_lines_and_trailing_space() -> None:
    raw = "第一段  \r\n第二行\r\r\n\n\n \n\t\n第二段\n\n\n"
    assert normalize_text(raw) == "第一段\n第二行\n\n第二段"


def test_control_and_invisible_characters_removed_but_tabs_kept() -> None:
    raw = "\ufeffa\x00b\x07c\u200bd\u00ade\tf\x1bg"
    assert normalize_text(raw) == "abcde\tfg"


def test_markdown_structure_is_kept() -> None:
    md = ("# 安装\n\n## 依赖\n\n- 第一项\n- 第二项\n\n| 参数 | 默认值 |\n| --- | --- |\n| top_p | 0.9 |\n\n"
          "```python\nif x:\n    return 1\n```\n\n> 引用")
    assert normalize_text(md) == md


def test_lines_are_not_joined_outside_pdf_text() -> None:
    assert normalize_text("第一行中文\n第二行中文") == "第一行中文\n第二行中文"


def test_pdf_wrapped_lines_become_paragraphs() -> None:
    page = ("标题行\n"
            "这是一个很长的段落，它在排版时被折成了好几行，每一行都几乎\n"
            "占满整个版面的宽度，直到最后一行才比较短。\n"
            "Second paragraph is English and also wraps at the right margin of\n"
            "the page.")
    assert unwrap_pdf_lines(page) == (
        "标题行\n\n这是一个很长的段落，它在排版时被折成了好几行，每一行都几乎占满整个版面的宽度，直到最后一行才比较短。"
        "\n\nSecond paragraph is English and also wraps at the right margin of the page.")
    assert normalize_text(page, pdf_lines=True).startswith("标题行\n\n这是一个很长的段落")
