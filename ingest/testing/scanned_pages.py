"""Generated "scanned" pages for the OCR benchmark and tests: Chinese and English text drawn with Noto CJK by
Pillow (single-column, two-column and table pages), with the exact text each page holds and questions about
facts on it. Facts are made up from templates with a seeded RNG, so every page is new text and every question
has one right page.

``make_pages(n, seed)`` → ``list[ScannedPage]`` drawn at 300 dpi (A4); ``at_dpi`` scales to another resolution,
``degrade`` adds noise and skew; ``image_pdf`` writes image-only PDFs (no text layer), as a scanner does.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_PATH = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
BASE_DPI = 300
A4_INCHES = (8.27, 11.69)
FONT_PT = 12

_CITIES = ["杭州", "成都", "西安", "长沙", "青岛", "昆明", "厦门", "南昌", "兰州", "贵阳", "太原", "合肥",
           "福州", "济南", "沈阳", "大连", "宁波", "无锡", "珠海", "洛阳"]
_ITEMS = ["光学镜片", "竹制家具", "陶瓷茶具", "医用口罩", "锂电池", "丝绸围巾", "农用无人机", "咖啡豆", "风力叶片",
          "钢琴配件", "羽毛球拍", "中药饮片", "太阳能板", "carbon bikes", "儿童绘本", "潜水装备"]
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
_EN_CITIES = ["Leeds", "Porto", "Tampere", "Graz", "Utrecht", "Bergen", "Lyon", "Turin", "Gdansk", "Aarhus",
              "Malmo", "Brno", "Ghent", "Cork", "Basel", "Bilbao"]
_EN_ITEMS = ["violin strings", "glass beads", "wool blankets", "bicycle chains", "paper lanterns", "copper pipes",
             "ski boots", "olive oil", "telescope lenses", "cork tiles", "linen shirts", "brass hinges"]
_FILLER_ZH = ["仓库实行两班倒制度，夜间由值班人员巡查消防通道。", "所有货物入库前都要经过抽样检验，并登记批次号。",
              "年度盘点通常安排在十二月的最后一周进行。", "员工培训内容包括叉车操作、急救知识和信息系统使用。",
              "客户可以通过电话或网站查询订单的配送进度。", "遇到台风或暴雨天气时，户外装卸作业暂停。"]
_FILLER_EN = ["Every shipment is weighed twice before it leaves the loading bay.",
              "Night shifts are covered by a rotating team of four supervisors.",
              "Damaged goods are photographed and reported within one working day.",
              "The annual stock count takes place during the last week of December."]


@dataclass
class Question:
    question: str
    answer: str  # a keyword the retrieved passage must contain
    page: int  # 1-based page of the document that holds it


@dataclass
class ScannedPage:
    image: Image.Image  # at BASE_DPI, RGB
    text: str  # the page's text in reading order (lines joined by "\n")
    kind: str  # "zh" | "en" | "two_column" | "table"
    # The same text as typed paragraphs (no layout line breaks): what the page holds as a text document.
    paragraphs: list[str] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_PATH, px)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """Greedy wrap: English at spaces, Chinese at any character."""
    lines, line = [], ""
    tokens = text.split(" ") if text.isascii() else list(text)
    sep = " " if text.isascii() else ""
    for tok in tokens:
        trial = f"{line}{sep}{tok}" if line else tok
        if font.getlength(trial) <= width:
            line = trial
        else:
            lines.append(line)
            line = tok
    if line:
        lines.append(line)
    return lines


def _person(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, 2))


def _unique(make: Callable[[], str], used: set[str]) -> str:
    """A code from ``make`` not in ``used`` (then added to it), so every fact names its own warehouse."""
    code = make()
    while code in used:
        code = make()
    used.add(code)
    return code


def _zh_facts(rng: random.Random, n: int, used: set[str]) -> list[tuple[str, Question]]:
    out = []
    for _ in range(n):
        code = _unique(lambda: f"{rng.choice('ABCDEFGHJK')}{rng.randint(100, 999)}", used)
        city, item, who, staff = rng.choice(_CITIES), rng.choice(_ITEMS), _person(rng), rng.randint(12, 480)
        sentence = (f"编号{code}的仓库位于{city}，由{who}负责管理，共有{staff}名员工，主要存放{item}。"
                    f"{rng.choice(_FILLER_ZH)}")
        out.append((sentence, Question(f"编号{code}的仓库由谁负责管理？", who, 0)))
    return out


def _en_facts(rng: random.Random, n: int, used: set[str]) -> list[tuple[str, Question]]:
    out = []
    for _ in range(n):
        code = _unique(lambda: f"W-{rng.randint(1000, 9999)}", used)
        city, item, staff = rng.choice(_EN_CITIES), rng.choice(_EN_ITEMS), rng.randint(12, 480)
        sentence = (f"Warehouse {code} is located in {city}, employs {staff} people and mainly stores {item}. "
                    f"{rng.choice(_FILLER_EN)}")
        out.append((sentence, Question(f"Which city is warehouse {code} located in?", city, 0)))
    return out


def _draw_block(draw: ImageDraw.ImageDraw, paragraphs: list[str], font, x: int, y: int, width: int,
                line_h: int) -> tuple[list[str], int]:
    lines = []
    for par in paragraphs:
        for line in _wrap(par, font, width):
            draw.text((x, y), line, font=font, fill="black")
            lines.append(line)
            y += line_h
        y += line_h // 2
    return lines, y


def _page(kind: str, rng: random.Random, used: set[str]) -> ScannedPage:
    w, h = int(A4_INCHES[0] * BASE_DPI), int(A4_INCHES[1] * BASE_DPI)
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    px = round(FONT_PT / 72 * BASE_DPI)
    font, line_h, margin = _font(px), round(px * 1.6), BASE_DPI
    questions: list[Question] = []
    if kind in ("zh", "en"):
        facts = _zh_facts(rng, 6, used) if kind == "zh" else _en_facts(rng, 6, used)
        lines, _ = _draw_block(draw, [f for f, _ in facts], font, margin, margin, w - 2 * margin, line_h)
        paragraphs = [f for f, _ in facts]
        questions = [q for _, q in facts]
    elif kind == "two_column":
        facts = _zh_facts(rng, 8, used)
        gap = BASE_DPI // 3
        col_w = (w - 2 * margin - gap) // 2
        left, _ = _draw_block(draw, [f for f, _ in facts[:4]], font, margin, margin, col_w, line_h)
        right, _ = _draw_block(draw, [f for f, _ in facts[4:]], font, margin + col_w + gap, margin, col_w, line_h)
        lines = left + right
        paragraphs = [f for f, _ in facts]
        questions = [q for _, q in facts]
    else:  # table
        head = ["编号", "城市", "负责人", "员工数", "Item"]
        rows = []
        for _ in range(14):
            code = f"T{rng.randint(1000, 9999)}"
            while code in used:
                code = f"T{rng.randint(1000, 9999)}"
            used.add(code)
            rows.append([code, rng.choice(_CITIES), _person(rng), str(rng.randint(12, 480)), rng.choice(_EN_ITEMS)])
            questions.append(Question(f"表格中编号{code}的负责人是谁？", rows[-1][2], 0))
        title = "各地仓库负责人一览表"
        draw.text((margin, margin), title, font=font, fill="black")
        col_w = [0.14, 0.14, 0.18, 0.14, 0.40]
        table_w = w - 2 * margin
        y = margin + 2 * line_h
        row_h = round(line_h * 1.3)
        lines = [title]
        for row in [head, *rows]:
            x = margin
            for cell, frac in zip(row, col_w):
                cw = int(frac * table_w)
                draw.rectangle([x, y, x + cw, y + row_h], outline="black", width=3)
                draw.text((x + px // 3, y + (row_h - px) // 2 - px // 8), cell, font=font, fill="black")
                x += cw
            lines.append(" ".join(row))
            y += row_h
        paragraphs = list(lines)
    return ScannedPage(img, "\n".join(lines), kind, questions=questions, paragraphs=paragraphs)


def make_pages(n: int = 24, seed: int = 7) -> list[ScannedPage]:
    """``n`` pages cycling through Chinese, English, two-column and table layouts."""
    rng = random.Random(seed)
    used: set[str] = set()
    kinds = ["zh", "en", "two_column", "zh", "table", "en"]
    return [_page(kinds[i % len(kinds)], rng, used) for i in range(n)]


def at_dpi(image: Image.Image, dpi: int) -> Image.Image:
    if dpi == BASE_DPI:
        return image
    scale = dpi / BASE_DPI
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)


def degrade(image: Image.Image, seed: int = 0, angle: float = 1.0, noise: float = 12.0) -> Image.Image:
    """A cheap scan: slight rotation, blur and Gaussian noise."""
    import numpy as np
    rotated = image.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor="white")
    arr = np.asarray(rotated.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)
    arr += np.random.default_rng(seed).normal(0, noise, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype("uint8"))


def image_pdf(images: list[Image.Image], path: Path, dpi: int) -> Path:
    """An image-only PDF (one image per page, no text layer) at ``dpi``."""
    first, *rest = [im.convert("RGB") for im in images]
    first.save(path, "PDF", resolution=float(dpi), save_all=True, append_images=rest)
    return path


def _squash(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_accuracy(truth: str, got: str) -> float:
    """1 − CER over the text without whitespace (floored at 0)."""
    t, g = _squash(truth), _squash(got)
    return max(0.0, 1 - _edit_distance(t, g) / max(len(t), 1))
