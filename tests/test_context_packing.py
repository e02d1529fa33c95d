"""Packing passages into a token budget: best first, whole sentences only, room left for the answer."""

from __future__ import annotations

from answer_fakes import scored

from prompts.context_packing import pack_passages, prompt_budget
from prompts.templates import render_passage


def count(text: str) -> int:
    return len(text)  # one token per character: easy to reason about


def block_cost(number: int, text: str) -> int:
    return count(render_passage(number, scored(text), text)) + 1


def test_budget_leaves_room_for_the_answer_inside_the_context_window():
    assert prompt_budget(2048, n_ctx=4096, max_new_tokens=512, overhead_tokens=300) == 2048
    assert prompt_budget(2048, n_ctx=2048, max_new_tokens=512, overhead_tokens=300) == 2048 - 512 - 300
    assert prompt_budget(2048, n_ctx=512, max_new_tokens=512, overhead_tokens=300) == 0


def test_keeps_best_first_order_and_stops_at_the_budget():
    texts = ["第一段很重要。", "第二段也不错。", "第三段次要。"]
    budget = block_cost(1, texts[0]) + block_cost(2, texts[1]) + 5
    packed = pack_passages([scored(t, i + 1) for i, t in enumerate(texts)], budget, count)
    assert [p.text for p in packed] == texts[:2]
    assert [p.number for p in packed] == [1, 2]
    assert not any(p.trimmed for p in packed)


def test_trims_an_oversized_passage_at_a_sentence_end_never_mid_sentence():
    text = "甲是第一句话。乙是第二句话。丙是第三句话。"
    budget = block_cost(1, "甲是第一句话。乙是第二句话。") + 2
    [packed] = pack_passages([scored(text)], budget, count)
    assert packed.trimmed and packed.text == "甲是第一句话。乙是第二句话。"
    assert packed.passage.chunk.text == text  # the stored chunk is untouched


def test_skips_a_passage_whose_first_sentence_cannot_fit_and_uses_later_ones():
    long_sentence = "这是一个没有任何句号而且非常非常长的句子" * 10
    short = "短句。"
    budget = block_cost(1, short) + 3
    packed = pack_passages([scored(long_sentence, 1), scored(short, 2)], budget, count)
    assert [(p.number, p.text) for p in packed] == [(1, short)]


def test_total_never_exceeds_budget():
    texts = [f"第{i}段第一句。第{i}段第二句。第{i}段第三句。" for i in range(8)]
    for budget in (0, 40, 77, 150, 400):
        packed = pack_passages([scored(t, i) for i, t in enumerate(texts)], budget, count)
        assert sum(block_cost(p.number, p.text) for p in packed) <= budget
