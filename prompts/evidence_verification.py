"""A yes/no question to the local LLM: does this evidence (the sentences an answer cites) answer the question?

The model sees only the cited sentence(s) with their neighbours and the question, never its own answer, and the
probability of "yes" against "no" as its next token is the score (calibrated in bench/RESULTS_NEAR_MISS.md). A
near miss ("the passages give 2020, the question asks 2021") reads as relevant to a generator writing an answer;
asked only whether the sentence answers the question, the same model says no far more often."""

from __future__ import annotations

from typing import Protocol

from prompts.templates import quote_as_data

# One wording per language, each the best of three compared on the tuning half of the near-miss windows
# (bench/RESULTS_NEAR_MISS.md): in Chinese a plain "is the answer in it?" separated near misses from answerable
# windows best; in English the strict "the exact fact, for the same entity, event and time" did (a plain question
# got "Yes" for most same-topic paragraphs).
_SYSTEM = {
    "zh": "你判断一段资料里是否有某个问题的答案。只回答“是”或“否”。",
    "en": ("You are a strict reviewer. A text answers a question only if it states the exact fact asked, for the "
           "same entity, event and time. Reply with only Yes or No."),
}
# The user message is a shared opening (question and evidence) and the question asked of them, so a second
# verdict on the same evidence (prompts/claim_check.py: is this *answer* right?) reuses the evaluated opening.
USER_OPENING = {
    "zh": "问题：{question}\n\n资料：\n<text>\n{evidence}\n</text>\n\n",
    "en": "Text:\n<text>\n{evidence}\n</text>\n\nQuestion: {question}\n",
}
_ASK = {
    "zh": "这段资料里有这个问题的答案吗？只回答是或否。",
    "en": "Can the question be answered from this text alone? Reply Yes or No.",
}
# First tokens the model may start its verdict with.
YES = ("是", "Yes", "yes", "YES")
NO = ("否", "No", "no", "NO", "不")


class YesNoScorer(Protocol):
    def yes_probability(self, messages: list[dict], yes: tuple[str, ...], no: tuple[str, ...]) -> float:
        """P(next token starts a yes) / (P(yes) + P(no)) after the chat prompt ``messages``."""
        ...


def verdict_messages(question: str, evidence: str, language: str, ask: str) -> list[dict]:
    """The yes/no prompt: the shared opening over ``question`` and ``evidence``, then ``ask``."""
    lang = "zh" if language == "zh" else "en"
    opening = USER_OPENING[lang].format(evidence=quote_as_data(evidence), question=quote_as_data(question))
    return [{"role": "system", "content": _SYSTEM[lang]}, {"role": "user", "content": opening + ask}]


def verification_messages(question: str, evidence: str, language: str) -> list[dict]:
    return verdict_messages(question, evidence, language, _ASK["zh" if language == "zh" else "en"])


def verify_evidence(scorer: YesNoScorer, question: str, evidence: str, language: str) -> float:
    """The model's probability that ``evidence`` answers ``question``."""
    return scorer.yes_probability(verification_messages(question, evidence, language), YES, NO)
