"""Repair before refusing: a drafted answer with a fixable defect is fixed, not withdrawn.

- A figure without the unit the question asks for ("12 [2]" to "多少人") takes its unit from the cited sentence
  that writes it ("12名"): ``with_units`` (no model call; the answer states the unit asked).
- A marker-only answer ("[1]"), a list shorter than the one the cited sentence gives ("分哪几步" answered with one
  step of three), or a figure the model's own verdict doubts while the cited sentence holds other figures (the wrong
  one of two numbers): ``repair_note`` / ``incomplete_list`` / ``doubtful_figure`` say what is wrong (a check's
  ``Verdict.defect``, prompts/checks/), and ``repair_messages`` asks the model once more with it. The repaired
  answer is checked the same way as the first one (app/answer/answer_pipeline.py).
"""

from __future__ import annotations

import re

from prompts.citations import remove_invalid_citations
from prompts.quantities import read_quantities, same_value, to_arabic
from prompts.question_shape import COUNT, LIST, QUANTITY, AskedFor

# Items of an enumeration: separated by 、，, ; 和/及/以及/与 "and".
_ITEM_SPLIT = re.compile(r"[、，,；;]|以及|和|及|与|與|\band\b|\bor\b")
_LIST_OPENING = re.compile(r"[：:]|分别为|分別為|分别是|分別是|包括|包含|including|namely")
_ITEM_NOISE = re.compile(r"^(?:第[一二三四五六七八九十\d]+步|先|再|然后|然後|最后|最後|分别为|分別為|分别是|包括|包含|有)[，,]?")
MIN_LIST_ITEMS = 3

_NOTES = {
    "zh": {"markers_only": "你的回答只有资料编号，没有写出答案。",
           "incomplete_list": "资料{n}列出了{total}项（{items}），你的回答只写出了其中{found}项。",
           "doubtful_figure": "你的回答给出的数字是{figure}，但资料{n}中同一句话里还有{others}，请确认哪一个才是问题所问的。"},
    "en": {"markers_only": "Your answer gives only the passage number, not the answer.",
           "incomplete_list": "Passage {n} lists {total} items ({items}); your answer gives {found} of them.",
           "doubtful_figure": "Your answer gives {figure}, but the same sentence of passage {n} also gives {others}; "
                              "check which one the question asks for."},
}
_ASK_AGAIN = {"zh": "{note}请只根据资料重新回答这个问题：{question}\n写出完整的答案（问数量时写出数字和单位，问哪些时列出全部），"
                    "并在句末标注资料编号，如 [1]。",
              "en": "{note} Answer the question again, from the passages only: {question}\nGive the complete answer "
                    "(a number with its unit, or every item asked for) and end each sentence with the passage numbers, "
                    "e.g. [1]."}


def with_units(answer: str, asked: AskedFor, cited: list[str]) -> str:
    """``answer`` with each bare figure given the unit (and 万/亿 multiplier) the cited sentences write it with,
    when a count or quantity is asked; unchanged otherwise."""
    if asked.kind not in (COUNT, QUANTITY):
        return answer
    written = [q for s in cited for q in read_quantities(s) if q.unit]
    fixed = answer
    for figure in re.finditer(r"(?<![\d.\[])(\d+(?:\.\d+)?)(?![\d.\]])(?!\s*(?:[%‰]|[\u4e00-\u9fff]|[A-Za-z]))",
                              to_arabic(answer)):
        value = float(figure.group(1))
        match = next((q for q in written if q.text.startswith(figure.group(1)) and
                      (same_value(q.value, value) or q.text[len(figure.group(1)):][:1] in "万亿千百")), None)
        if match is not None and figure.group(1) in fixed:
            fixed = re.sub(rf"(?<![\d.\[]){re.escape(figure.group(1))}(?![\d.\]])", match.text, fixed, count=1)
    return fixed


def _items(sentence: str) -> list[str]:
    """The items a sentence enumerates (after its colon or 分别为/包括 when it has one: "分三步推进：先…，再…")."""
    listed = _LIST_OPENING.split(sentence)[-1]
    parts = [_ITEM_NOISE.sub("", p.strip(" 。.")).strip() for p in _ITEM_SPLIT.split(listed)]
    return [p for p in parts if 1 < len(p) <= 20]


def repair_note(kind: str, language: str, **found: str | int) -> str:
    """What to tell the model about a fixable defect (``kind``: markers_only, incomplete_list, doubtful_figure), in
    the question's language."""
    return _NOTES["zh" if language == "zh" else "en"][kind].format(**found)


def incomplete_list(answer: str, asked: AskedFor, cited_sentences: list[str], language: str, cited_number: int
                    ) -> str:
    """The note for an answer to a "which ones" question that names some, not all, of the items a cited sentence
    lists; "" when it names all (or none, or the question asks no list)."""
    if asked.kind != LIST:
        return ""
    bare = remove_invalid_citations(answer, set())
    for sentence in cited_sentences:
        items = _items(sentence)
        found = [i for i in items if i in bare]
        if len(items) >= MIN_LIST_ITEMS and 0 < len(found) < len(items):
            sep = "、" if language == "zh" else ", "
            return repair_note("incomplete_list", language, n=f"[{cited_number}]", total=len(items),
                               items=sep.join(items), found=len(found))
    return ""


def doubtful_figure(answer: str, asked: AskedFor, cited_sentences: list[str], language: str, cited_number: int
                    ) -> str:
    """The note for a count or quantity whose cited sentence also gives other figures (call it when the model's
    own verdict doubts the answer: the wrong one of two numbers); "" otherwise."""
    if asked.kind not in (COUNT, QUANTITY):
        return ""
    answered = read_quantities(remove_invalid_citations(answer, set()))
    for sentence in cited_sentences:
        figures = read_quantities(sentence)
        if answered and any(same_value(a.value, f.value) for a in answered for f in figures):
            others = [f.text for f in figures if not any(same_value(a.value, f.value) for a in answered)]
            if others:
                return repair_note("doubtful_figure", language, figure=answered[0].text, n=f"[{cited_number}]",
                                   others=("、" if language == "zh" else ", ").join(others))
    return ""


def repair_messages(messages: list[dict], draft: str, defects: list[str], question: str, language: str
                    ) -> list[dict]:
    """The answer prompt, the draft as the model's turn, and what is wrong with it, with the question asked again."""
    lang = "zh" if language == "zh" else "en"
    note = ("" if lang == "zh" else " ").join(defects)
    return [*messages, {"role": "assistant", "content": draft},
            {"role": "user", "content": _ASK_AGAIN[lang].format(note=note, question=question)}]
