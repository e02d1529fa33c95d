"""Sentence packing: only the sentences that bear on the question (with neighbours) go into the prompt, their
offsets and citation numbers survive, and the token budget holds."""

from __future__ import annotations

from answer_fakes import scored

from prompts.citations import build_citations
from prompts.context_packing import pack_sentences
from prompts.sentence_selection import GAP, question_tokens, select_excerpts
from prompts.templates import render_passage

FILLER = ["天气很好。", "大家去公园散步。", "湖边有很多鸭子。", "晚上下了一场雨。", "第二天路面很湿。"]
FACT = "长城全长约两万一千公里。"


def count(text: str) -> int:
    return len(text)  # one token per character: easy to reason about


def block_cost(number: int, passage, text: str) -> int:
    return count(render_passage(number, passage, text)) + 1


def test_keeps_the_matching_sentence_and_its_neighbours_with_their_offsets():
    text = "".join(FILLER[:3] + [FACT] + FILLER[3:])
    [excerpt, *_] = select_excerpts(text, question_tokens("长城有多长？"), focus=1, neighbours=1)
    assert excerpt.text == FILLER[2] + FACT + FILLER[3]
    [(start, end)] = excerpt.spans
    assert text[start:end] == excerpt.text


def test_leaner_excerpts_follow_and_non_adjacent_runs_are_marked_as_gaps():
    text = "".join([FACT] + FILLER + ["长城修建于明朝。"])
    candidates = select_excerpts(text, question_tokens("长城有多长，修建于哪个朝代？"), focus=2, neighbours=1)
    richest, leanest = candidates[0], candidates[-1]
    assert GAP in richest.text and len(richest.spans) == 2
    for excerpt in candidates:
        assert excerpt.text == GAP.join(text[a:b] for a, b in excerpt.spans)
    assert len(leanest.text) < len(richest.text)


def test_a_passage_matching_no_word_starts_from_its_opening():
    text = "".join(FILLER)
    [excerpt, *_] = select_excerpts(text, question_tokens("量子计算机"), focus=1, neighbours=1)
    assert excerpt.text == FILLER[0] + FILLER[1]


def test_numbers_offsets_and_citations_survive_packing():
    passages = [scored("".join(FILLER[:2] + [FACT] + FILLER[2:]), 1), scored("".join(FILLER), 2)]
    packed = pack_sentences(passages, "长城有多长？", 10_000, count, focus=1, neighbours=0)
    assert [p.number for p in packed] == [1, 2]
    first = packed[0]
    assert first.text == FACT and first.trimmed
    [(start, end)] = first.spans
    assert first.passage.text[start:end] == FACT
    [citation] = build_citations("约两万一千公里 [1]。", packed)
    assert citation.quoted_text == FACT and citation.spans == first.spans


def test_a_passage_kept_whole_is_not_marked_trimmed():
    [packed] = pack_sentences([scored(FACT)], "长城有多长？", 10_000, count, focus=2, neighbours=1)
    assert packed.text == FACT and not packed.trimmed and packed.spans == ()


def test_total_never_exceeds_the_budget_and_leaner_excerpts_fill_tight_room():
    texts = ["".join(FILLER[:i] + [FACT] + FILLER[i:]) for i in range(5)]
    passages = [scored(t, i) for i, t in enumerate(texts)]
    for budget in (0, 30, 60, 90, 150, 400):
        packed = pack_sentences(passages, "长城有多长？", budget, count, focus=2, neighbours=1)
        assert sum(block_cost(p.number, p.passage, p.text) for p in packed) <= budget
    # Room for the fact alone but not its neighbours: the leanest excerpt is taken rather than nothing.
    tight = block_cost(1, passages[2], FACT)
    [packed] = pack_sentences(passages[2:3], "长城有多长？", tight, count, focus=2, neighbours=1)
    assert packed.text == FACT


def test_sentence_packing_costs_fewer_tokens_than_whole_chunks():
    from prompts.context_packing import pack_passages

    passages = [scored("".join(FILLER[:i] + [FACT] + FILLER[i:]), i) for i in range(5)]
    whole = pack_passages(passages, 10_000, count)
    sentences = pack_sentences(passages, "长城有多长？", 10_000, count, focus=1, neighbours=1)
    assert len(sentences) == len(whole)
    assert sum(len(p.text) for p in sentences) < 0.6 * sum(len(p.text) for p in whole)


def test_every_passage_gets_its_best_sentence_before_the_best_passage_gets_more():
    passages = [scored("".join(FILLER[:2] + [FACT] + FILLER[2:]), i) for i in range(3)]
    lean = sum(block_cost(i + 1, p, FACT) for i, p in enumerate(passages))
    packed = pack_sentences(passages, "长城有多长？", lean + 12, count, focus=1, neighbours=1)
    assert [p.text for p in packed] == [FACT] * 3  # not room for neighbours: breadth wins over depth
    roomy = pack_sentences(passages, "长城有多长？", lean + 40, count, focus=1, neighbours=1)
    assert roomy[0].text == FILLER[1] + FACT + FILLER[2] and roomy[2].text == FACT  # the best passage enriched first
