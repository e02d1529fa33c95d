"""The lexical grounding check: token coverage of answer sentences by their cited passages, and the pipeline's
refusal of answers whose words mostly do not come from the passages."""

from __future__ import annotations

import pytest
from answer_fakes import FakeRetriever, ScriptedGenerator, scored

from app.answer.answer_pipeline import AnswerPipeline
from app.config import Settings
from app.wiring import assemble_pipeline
from ingest.store.text_tokenizer import tokenize
from ingest.testing.fake_embedder import FakeEmbedder
from prompts.lexical_support import answer_lexical_support, covered_tokens
from prompts.templates import PackedPassage

FLASH = "FlashAttention 是一种注意力算法，论文发表于 2022 年。"
PORT = "星河数据库默认监听 7341 端口。"
PACKED = [PackedPassage(1, scored(FLASH, 1), FLASH), PackedPassage(2, scored(PORT, 2), PORT)]
# What the 1.5B model does on a near miss: explains the term the passage only names, from its own knowledge.
INVENTED = "FlashAttention 通过分块计算和重计算减少显存读写，从而加速训练和推理[1]。"


def test_covered_tokens_counts_claim_tokens_found_in_the_evidence():
    covered, total = covered_tokens("默认监听 7341 端口。", [PORT])
    assert total == len(set(tokenize("默认监听 7341 端口。")))
    assert covered == total  # every word of the claim is in the passage
    covered, total = covered_tokens("默认端口是 7341。", [PORT])
    assert 0 < covered < total  # reworded: the bigrams across the new word boundaries ("认端", "口是") are new
    covered, total = covered_tokens("月亮是奶酪做的。", [PORT])
    assert covered == 0 and total > 0


def test_answer_support_checks_each_sentence_against_the_passages_it_cites():
    # The port sentence cites passage 1, which does not hold it: unsupported there although passage 2 has it.
    wrong_cite = answer_lexical_support("星河数据库默认监听 7341 端口[1]。", PACKED, 0.2)
    right_cite = answer_lexical_support("星河数据库默认监听 7341 端口[2]。", PACKED, 0.2)
    uncited = answer_lexical_support("星河数据库默认监听 7341 端口。", PACKED, 0.2)
    assert wrong_cite.score < 0.3
    assert right_cite.score == pytest.approx(1.0) and uncited.score == pytest.approx(1.0)


def test_answer_support_is_token_weighted_and_low_for_an_invented_explanation():
    invented = answer_lexical_support(INVENTED, PACKED, 0.2)
    assert invented.score < Settings().answer.min_lexical_support
    mixed = answer_lexical_support("论文发表于 2022 年[1]。" + INVENTED, PACKED, 0.2)
    assert invented.score < mixed.score < 1.0
    assert mixed.covered == invented.covered + len(set(tokenize("论文发表于 2022 年。")))


def test_refusal_sentences_and_other_language_sentences_are_not_scored():
    refusal = Settings().answer.refusal_zh
    only_refusal = answer_lexical_support(refusal, PACKED, 0.2, skip=(refusal,))
    assert only_refusal.score is None and only_refusal.total == 0
    # English answer over Chinese passages: words cannot match across languages, so no verdict either way.
    english = answer_lexical_support("The database listens on port 7341 by default [2].", PACKED, 0.2)
    assert english.score is None and english.skipped_sentences == 1


def _pipeline(answer: str, **answer_overrides) -> AnswerPipeline:
    settings = Settings()
    for key, value in answer_overrides.items():
        setattr(settings.answer, key, value)
    passages = [scored(FLASH, 1, dense=0.9), scored(PORT, 2, dense=0.85)]
    return assemble_pipeline(FakeRetriever(passages), ScriptedGenerator(answer), FakeEmbedder(dimension=256), settings)


def test_pipeline_refuses_an_answer_its_passages_do_not_support_and_says_why():
    answer = _pipeline(INVENTED).answer("FlashAttention 是怎样加速的？")
    assert answer.refused and answer.text == Settings().answer.refusal_zh
    assert answer.refusal_reason.startswith("grounding check:") and "lexical support" in answer.refusal_reason
    assert INVENTED.replace("[1]", "") in answer.refusal_reason.replace("[1]", "")  # the draft, for inspection
    assert len(answer.passages) == 2 and answer.checks  # what was close, and the per-sentence scores
    assert answer.citations == []


def test_pipeline_keeps_a_grounded_answer_and_the_check_can_be_turned_off():
    grounded = _pipeline("星河数据库默认监听 7341 端口[2]。").answer("星河数据库默认端口是多少？")
    assert not grounded.refused and grounded.refusal_reason == ""
    assert not _pipeline(INVENTED, min_lexical_support=0.0).answer("FlashAttention 是怎样加速的？").refused


def test_pipeline_does_not_judge_a_short_answer_by_word_overlap():
    # "9秒" for a passage that writes "九秒": no token in common, but far too short to be an invented explanation.
    settings = Settings()
    passages = [scored("月影协议规定每个节点每隔九秒发送一次心跳。", 1, dense=0.9)]
    pipeline = assemble_pipeline(FakeRetriever(passages), ScriptedGenerator("9秒 [1]"),
                                 FakeEmbedder(dimension=256), settings)
    answer = pipeline.answer("月影协议规定心跳间隔是多少秒？")
    assert not answer.refused and answer.text.startswith("9秒")
    settings.answer.min_lexical_tokens = 1
    assert pipeline.answer("月影协议规定心跳间隔是多少秒？").refused
