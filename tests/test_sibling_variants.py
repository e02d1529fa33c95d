"""The near miss "another variant of the same name": a Top-k question answered by the sentence about Top-p. Evidence
naming only a sibling refuses; naming the asked one (alone or with its sibling), or neither, does not
(prompts/sibling_variants.py, the "variant" kind of the evidence checks)."""

from __future__ import annotations

import pytest

from prompts.acceptance import against
from prompts.evidence_match import match_constraints
from prompts.question_constraints import question_constraints
from prompts.settings import AnswerSettings
from prompts.sibling_variants import asked_variants, sibling_variants

CHECKS = frozenset({"variant"})


def _missing(question: str, evidence: str) -> list[str]:
    language = "en" if question.isascii() else "zh"
    return match_constraints(question_constraints(question, language), evidence, CHECKS, 0.0, 4).missing


@pytest.mark.parametrize("question, evidence", [
    ("Top-k 采样最早是谁在哪一年提出的？", "Top-p 又叫核采样（nucleus sampling），由 Holtzman 等人在 2019 年提出。"),
    ("Lumen-7B-base 在 C-Eval 上得了多少分？", "Lumen-7B-Chat 在 C-Eval 上得分 61.2。"),
    ("Lumen-7B-Chat 在 C-Eval 上得了多少分？", "Lumen-7B-base 在 C-Eval 上得分 54.0。"),
    ("GPT-3 有多少参数？", "GPT-4 的参数量没有公开。"),
    ("Llama-2-7B 的上下文长度是多少？", "Llama-2-13B 的上下文长度是 4096。"),
    ("How many parameters does GPT-3 have?", "GPT-3.5 was trained on a mixture of text and code."),
    ("What was BERT-base trained on?", "BERT-large was trained on BooksCorpus and English Wikipedia."),
])
def test_evidence_naming_only_a_sibling_refuses(question: str, evidence: str) -> None:
    assert _missing(question, evidence)


@pytest.mark.parametrize("question, evidence", [
    # the asked one named, alone or beside its sibling; spelled another way (case, separators)
    ("Top-k 采样最早是谁在哪一年提出的？", "Top-k 与 Top-p 都是常用的截断采样方法，最早由 Fan 等人在 2018 年使用。"),
    ("top-k 采样有什么缺点？", "Top-K 的 k 固定不变。"),
    ("GPT-3 有多少参数？", "GPT3 有 1750 亿参数，GPT-4 未公开。"),
    # documents call the base model by its plain name: "Lumen-7B" names Lumen-7B-base, and is no sibling of it
    ("Lumen-7B-base 在 C-Eval 上得了多少分？", "Lumen-7B 在 C-Eval 上得分 54.0。"),
    # neither named: the sentence says "it" or paraphrases — not evidence against
    ("Top-k 采样有什么缺点？", "它的缺点是 k 固定不变，模型很确定时也会放进许多不可能的词。"),
    ("How many parameters does GPT-3 have?", "The model has 175 billion parameters."),
    # both asked: a sentence on one of them is about an asked thing
    ("Top-k 采样和 Top-p 采样同时使用时，先做哪一种截断？", "此时先做 top-k 截断，再做剩下的一步。"),
    # a one-part name has no variant; a longer or shorter name is no sibling
    ("RLHF 分几步？", "RLAIF 用 AI 反馈代替人类反馈。"),
    ("GPT-4 的上下文有多长？", "GPT-4o 支持 128k 上下文。"),
    # a shared prefix or no shared stem: other names, not variants (the name check's part)
    ("What did the non-Afghan veterans bring home?", "The non-Muslim volunteers returned with prestige."),
    ("What did the Seven-Day War change?", "The Six-Day War changed the region."),
])
def test_the_asked_variant_or_no_variant_passes(question: str, evidence: str) -> None:
    assert _missing(question, evidence) == []


def test_variants_and_their_siblings() -> None:
    assert asked_variants("Top-k 和 RLHF 有什么关系？", "zh") == ["Top-k"]
    assert asked_variants("What is top-k sampling?", "en") == []  # an English plain word is no name
    assert sibling_variants(["Top-k"], "Top-p 和 top-p 截断") == [("Top-k", ["Top-p", "top-p"])]
    assert sibling_variants(["Llama-2-7B"], "Llama-2-13B 与 Llama-3-7B") == [("Llama-2-7B", ["Llama-2-13B",
                                                                                            "Llama-3-7B"])]
    assert sibling_variants(["X-7B-base"], "X-7B-Chat 与 X-7B 的得分") == []  # X-7B names X-7B-base


def test_the_refusal_names_the_sibling_and_the_kind_is_shipped_as_evidence_against() -> None:
    found = _missing("Top-k 采样最早是谁在哪一年提出的？", "Top-p 由 Holtzman 等人在 2019 年提出。")
    assert found == ["the cited sentences name Top-p, not Top-k"]
    assert "variant" in AnswerSettings().evidence_checks
    assert against({"constraints.conflict_variant": 1.0}) == ["variant"]
