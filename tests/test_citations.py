"""Citation markers: parsing the forms models write, dropping numbers that name no passage."""

from __future__ import annotations

from answer_fakes import scored

from prompts.citations import build_citations, parse_citations, remove_invalid_citations
from prompts.templates import PackedPassage


def test_parses_single_grouped_fullwidth_forms_in_order_without_duplicates():
    assert parse_citations("A[2]，B【1，3】，C[2, 4][1]。") == [2, 1, 3, 4]
    assert parse_citations("no citations, just [brackets] and 2024") == []


def test_invalid_numbers_are_removed_and_empty_citations_vanish():
    text = "模型有十五亿参数[1][7]。它支持中文【2，9】。这句无据[8]。"
    assert remove_invalid_citations(text, {1, 2}) == "模型有十五亿参数[1]。它支持中文[2]。这句无据。"


def test_citations_carry_the_exact_text_the_model_saw():
    packed = [PackedPassage(1, scored("全文。第二句。", 11), "全文。", trimmed=True),
              PackedPassage(2, scored("另一段。", 12), "另一段。")]
    citations = build_citations("答[2]。又答[1][5]。", packed)
    assert [(c.number, c.quoted_text, c.passage.chunk.chunk_id) for c in citations] == [
        (2, "另一段。", 12), (1, "全文。", 11)]
