"""A yes/no question to the local LLM: does this evidence (the sentences an answer cites) answer the question?

The model sees only the cited sentence(s) with their neighbours and the question, never its own answer, and the
probability of "yes" against "no" as its next token is the score (calibrated in bench/RESULTS_NEAR_MISS.md). A
near miss ("the passages give 2020, the question asks 2021") reads as relevant to a generator writing an answer;
asked only whether the sentence answers the question, the same model says no far more often."""

from __future__ import annotations

from typing import Protocol

from prompts.templates import quote_as_data

_SYSTEM = {
    "zh": "你是严格的审核员。判断给出的资料是否直接回答了问题：年份、日期、对象、数量都必须与问题一致。只回答“是”或“否”。",
    "en": ("You are a strict reviewer. Decide whether the given text directly answers the question: the year, "
           "date, entity and quantity must all match the question. Reply with only Yes or No."),
}
_USER = {
    "zh": "资料：\n<text>\n{evidence}\n</text>\n\n问题：{question}\n这段资料是否直接给出了这个问题的答案？只回答是或否。",
    "en": ("Text:\n<text>\n{evidence}\n</text>\n\nQuestion: {question}\n"
           "Does this text directly give the answer to this question? Reply Yes or No."),
}
# First tokens the model may start its verdict with.
YES = ("是", "Yes", "yes", "YES")
NO = ("否", "No", "no", "NO", "不")


class YesNoScorer(Protocol):
    def yes_probability(self, messages: list[dict], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        """P(next token starts a yes) / (P(yes) + P(no)) after the chat prompt ``messages``."""
        ...


def verification_messages(question: str, evidence: str, language: str) -> list[dict]:
    lang = "zh" if language == "zh" else "en"
    return [{"role": "system", "content": _SYSTEM[lang]},
            {"role": "user", "content": _USER[lang].format(evidence=quote_as_data(evidence),
                                                           question=quote_as_data(question))}]


def verify_evidence(scorer: YesNoScorer, question: str, evidence: str, language: str) -> float:
    """The model's probability that ``evidence`` answers ``question``."""
    return scorer.yes_probability(verification_messages(question, evidence, language), YES, NO)
