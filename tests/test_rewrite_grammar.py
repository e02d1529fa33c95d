"""The rewrite's GBNF grammar: the conversation's Latin terms as the only Latin words of a Chinese rewrite (the
real model decoding under it: tests/test_generation_llama.py)."""

from __future__ import annotations

from prompts.rewrite_grammar import MAX_TERMS, conversation_terms, rewrite_grammar


def test_conversation_terms_are_the_latin_words_longest_first():
    terms = conversation_terms(["Top-p 采样和 Top-k 采样有什么区别？", "Holtzman 在 2019 年提出 Top-p [1]。"])
    assert terms == ["Holtzman", "Top-k", "Top-p"]  # numbers are free in the grammar, not terms
    assert len(conversation_terms([" ".join(f"w{i}x" for i in range(200))])) == MAX_TERMS


def test_a_chinese_rewrite_may_use_only_the_conversations_latin_terms():
    grammar = rewrite_grammar("zh", ["Top-p", 'say "hi"'])
    assert 'term ::= "Top-p" | "say \\"hi\\""' in grammar
    assert grammar.startswith("root ::= piece{2,120} [？?]")  # one question: it ends at its question mark
    assert "\\n" not in grammar.split("piece ::=")[1].split("\n")[0]  # no line break is a piece


def test_a_chinese_rewrite_without_terms_has_no_latin_words():
    assert 'term ::= "\\u0000"' in rewrite_grammar("zh", [])


def test_an_english_rewrite_is_one_question_line():
    assert rewrite_grammar("en", ["BERT"]) == 'root ::= [A-Z0-9"\'(] [^\\n?]{2,200} "?"\n'
