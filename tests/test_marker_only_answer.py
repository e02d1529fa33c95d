"""Answers made of citation markers alone are recognised; only such answers are replaced by a quote."""

from __future__ import annotations

from answer_fakes import scored

from prompts.marker_only_answer import is_markers_only, quote_cited_sentence
from prompts.templates import PackedPassage


def test_markers_only_is_recognised():
    assert is_markers_only("[1]") and is_markers_only("[1][2]。") and is_markers_only(" 【3】. ")
    assert not is_markers_only("9秒 [1]") and not is_markers_only("") and not is_markers_only("Yes.")


def test_quote_picks_the_sentence_sharing_most_words_with_the_question():
    text = "Sparrow-3 was our first adapter. It was trained on 2,300 support tickets. It overfitted."
    packed = [PackedPassage(number=1, passage=scored(text, 1), text=text)]
    quote = quote_cited_sentence("How many support tickets was Sparrow-3 trained on?", "[1]", packed, "en")
    assert quote == 'Passage [1] says: "It was trained on 2,300 support tickets." [1]'
    assert quote_cited_sentence("How many?", "[7]", packed, "en") is None
