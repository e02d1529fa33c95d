"""Answers made of citation markers alone are recognised; only such answers are replaced by the words the model
copies out of the cited passage, or by a quote."""

from __future__ import annotations

from answer_fakes import scored

from prompts.checks.base import Draft, Question, Verdict
from prompts.checks.marker_quote import MarkerQuoteCheck
from prompts.marker_only_answer import is_markers_only, points_at_passage, quote_cited_sentence
from prompts.settings import AnswerSettings
from prompts.span_extraction import verbatim_span
from prompts.templates import PackedPassage


def test_markers_only_is_recognised():
    assert is_markers_only("[1]") and is_markers_only("[1][2]。") and is_markers_only(" 【3】. ")
    assert not is_markers_only("9秒 [1]") and not is_markers_only("") and not is_markers_only("Yes.")


def test_a_marker_standing_where_the_answer_belongs_points_at_the_passage():
    for text in ("[2]", "The passage number is [3].", "The family that does this is [3][1].", "答案是 [2]。",
                 "详见[1]"):
        assert points_at_passage(text), text
    for text in ("The answer is 20 [1].", "Robert Koch [1]", "是的 [1]", "The answer is in passage three.", ""):
        assert not points_at_passage(text), text


def test_quote_picks_the_sentence_sharing_most_words_with_the_question():
    text = "Sparrow-3 was our first adapter. It was trained on 2,300 support tickets. It overfitted."
    packed = [PackedPassage(number=1, passage=scored(text, 1), text=text)]
    quote = quote_cited_sentence("How many support tickets was Sparrow-3 trained on?", "[1]", packed, "en")
    assert quote == 'Passage [1] says: "It was trained on 2,300 support tickets." [1]'
    assert quote_cited_sentence("How many?", "[7]", packed, "en") is None


class _Writer:
    """A fake ShortWriter: replies ``reply`` and records the prompts it was given."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[list[dict]] = []

    def write(self, messages: list[dict], max_new_tokens: int) -> str:
        self.prompts.append(messages)
        return self.reply


TEXT = "Sparrow-3 was our first adapter. It was trained on 2,300 support tickets. It overfitted."
QUESTION = "How many support tickets was Sparrow-3 trained on?"


def _check(reply: str, **answer) -> tuple[Verdict, _Writer]:
    writer = _Writer(reply)
    check = MarkerQuoteCheck(AnswerSettings().replace(**answer), writer)
    packed = [PackedPassage(number=2, passage=scored(TEXT, 1), text=TEXT)]
    return check.check(Draft("[2]"), Question(QUESTION, "en"), packed), writer


def test_a_span_stands_only_when_the_passage_writes_it():
    assert verbatim_span('"2,300 support tickets".', TEXT, 0.5) == "2,300 support tickets"
    assert verbatim_span("2,300  SUPPORT\ntickets", TEXT, 0.5) == "2,300 support"  # first line, any case
    assert verbatim_span("2300 tickets", TEXT, 0.5) is None  # not verbatim
    assert verbatim_span("", TEXT, 0.5) is None and verbatim_span("“”", TEXT, 0.5) is None
    assert verbatim_span(TEXT, TEXT, 0.5) is None  # the whole passage is not an answer
    assert verbatim_span("７０-８０公里", "最高时速达70-80公里。", 0.9) == "70-80公里"  # NFKC
    # Never part of a number or a Latin word.
    assert verbatim_span("0", "2020年选举", 0.9) is None and verbatim_span("300 sup", TEXT, 0.5) is None
    assert verbatim_span("1500年", "從前1500年就在此居住", 0.9) == "1500年"


def test_a_marker_only_draft_becomes_the_copied_span_or_else_the_quote():
    verdict, writer = _check("2,300 support tickets")
    assert verdict.passed and verdict.draft.text == "2,300 support tickets [2]"
    assert verdict.signals == {"markers_only": 1.0, "span": 1.0} and verdict.defect
    assert TEXT in writer.prompts[0][-1]["content"] and QUESTION in writer.prompts[0][-1]["content"]
    verdict, _ = _check("about two thousand tickets")
    assert verdict.draft.text == 'Passage [2] says: "It was trained on 2,300 support tickets." [2]'
    assert verdict.draft.described_as == "the quoted sentence" and verdict.signals["span"] == 0.0
    verdict, writer = _check("2,300 support tickets", span_languages=("zh",))
    assert verdict.draft.text.startswith("Passage [2] says") and not writer.prompts
