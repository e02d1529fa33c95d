"""Regenerate data/sample/tokenizer_notes.pdf, the sample corpus's PDF, with headless Chromium (CJK via fonts-noto-cjk).

The PDF is committed; run this only to change it:  python data/make_sample_pdf.py [--chromium /usr/bin/chromium]
Chromium-printed CJK PDFs are a realistic test of text extraction: pypdf returns some characters as Kangxi
radicals, which ingest/chunking/normalize.py maps back.
"""

from __future__ import annotations

import argparse
import html
import subprocess
import tempfile
from pathlib import Path

TITLE = "分词器与上下文窗口"

# Each inner list is one printed page: (kind, text) with kind "h1", "h2" or "p".
PAGES = [
    [
        ("h1", TITLE),
        ("p", "大语言模型看到的不是汉字或单词，而是 token。分词器（tokenizer）负责把文本切成 token 序列，"
              "再映射成整数编号。分词方式决定了同样一段话要占用多少 token，也就间接决定了上下文窗口能装下多少内容。"),
        ("h2", "一、常见的分词算法"),
        ("p", "BPE（字节对编码）从单个字节或字符出发，反复合并出现次数最多的相邻符号对，直到词表达到预定大小。"
              "WordPiece 与之类似，但按合并后对语言模型似然的提升来选择合并对。SentencePiece 把空格也当作普通符号处理，"
              "因此不依赖预先分词，特别适合中文、日文这类词与词之间没有空格的语言。"),
        ("p", "词表大小是一个权衡：词表越大，同样的文本切出的 token 越少，但嵌入矩阵也越大。"
              "早期的 GPT-2 词表约有 5 万个 token，而近年的多语言模型普遍把词表扩大到 15 万个左右，以便覆盖更多中文词语。"),
        ("h2", "二、中文的 token 开销"),
        ("p", "在一个以英文为主训练的分词器里，一个汉字常常要占 2 到 3 个 token；在中文语料更充分的分词器里，"
              "常见词语可以合并成一个 token，平均下来一个汉字约 0.7 个 token。我们用一篇 1 万字的产品手册做过对比："
              "旧分词器切出 21,800 个 token，新分词器只切出 7,300 个，相差近三倍。"),
    ],
    [
        ("h2", "三、上下文窗口"),
        ("p", "上下文窗口是模型一次能处理的最大 token 数，提示词和生成的回答共同占用这个额度。"
              "窗口为 4096 的模型，如果提示词已经用掉 3500 个 token，回答最多只剩不到 600 个 token 的空间。"),
        ("p", "在检索增强生成中，检索到的资料片段要放进提示词，因此需要预先给资料留出固定预算，"
              "并用模型自己的分词器来计数，而不是按字符数估算。字符数估算在中英混排的文本上误差可能超过 40%。"),
        ("h2", "四、位置编码与长度外推"),
        ("p", "旋转位置编码（RoPE）把位置信息写进查询和键向量的旋转角度里。训练时如果只见过 4K 长度，"
              "直接处理 32K 的输入效果会明显下降。位置插值和 YaRN 等方法通过缩放旋转频率，"
              "让模型只需少量继续训练就能适应更长的窗口。"),
        ("h2", "五、实践建议"),
        ("p", "估算成本和延迟时一律以 token 计；截断提示词时从资料片段的末尾开始截，保留问题本身和系统指令；"
              "更换模型后重新测一遍 token 开销，因为不同模型的分词器差别很大。"),
    ],
]

CSS = """
@page { size: A4; margin: 22mm; }
body { font-family: 'Noto Serif CJK SC', 'Noto Sans CJK SC', serif; font-size: 12pt; line-height: 1.7; }
h1 { font-size: 20pt; } h2 { font-size: 15pt; margin-top: 1.2em; }
.page { page-break-after: always; } .page:last-child { page-break-after: auto; }
"""


def build_html() -> str:
    pages = []
    for page in PAGES:
        body = "".join(f"<{kind}>{html.escape(text)}</{kind}>" for kind, text in page)
        pages.append(f'<div class="page">{body}</div>')
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{TITLE}</title>'
            f"<style>{CSS}</style></head><body>{''.join(pages)}</body></html>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "sample" / "tokenizer_notes.pdf")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "tokenizer_notes.html"
        source.write_text(build_html(), encoding="utf-8")
        subprocess.run([args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                        f"--user-data-dir={tmp}/profile", f"--print-to-pdf={args.out.resolve()}",
                        source.as_uri()], check=True, capture_output=True, timeout=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
