"""How an answer is scored against a question's expected keywords (the answer benchmarks' shared rules)."""

from __future__ import annotations

import unicodedata

NAIVE_REFUSAL_PHRASES = ("don't know", "do not know", "not mentioned", "no information", "does not provide",
                         "doesn't provide", "not provided", "cannot answer", "can't answer",
                         "不知道", "无法回答", "没有提到", "未提及", "没有提供", "无法确定", "没有相关信息")


def normalise(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def keyword_hit(answer: str, expected: list[str]) -> bool:
    norm = normalise(answer)
    return any(normalise(e) in norm for e in expected if e)


def naive_refused(answer: str) -> bool:
    low = answer.lower()
    return not answer.strip() or any(p in low for p in NAIVE_REFUSAL_PHRASES)
