"""The claim check: an answer judged with its question and the sentences it cites (prompts/claim_check.py)."""

from prompts.claim_check import apply_derivation, claim_messages, complement_derivation
from prompts.evidence_verification import verification_messages

SAMPLE = ["我们的“青鸾”内部评测集共有 412 道题，其中 37 道是资料中没有答案的“拒答题”，专门用来检验系统会不会老实说不知道。"]


def test_the_count_of_the_other_questions_is_corrected_to_total_minus_part():
    d = complement_derivation("青鸾评测集中有多少道题是有答案的？", "37 [1]", SAMPLE, "zh")
    assert d is not None and d.value == 375
    assert apply_derivation("37 [1]", d, "zh") == "375（412 − 37 = 375） [1]"
    assert apply_derivation("青鸾评测集有 37 道题有答案 [1]。", d, "zh").startswith("青鸾评测集有 375 道题有答案（412 − 37")


def test_the_part_itself_is_not_corrected():
    assert complement_derivation("青鸾评测集里有多少道拒答题？", "37 [1]", SAMPLE, "zh") is None
    assert complement_derivation("青鸾评测集里有多少道题没有答案？", "37 道 [1]", SAMPLE, "zh") is None
    assert complement_derivation("青鸾评测集共有多少道题？", "412 [1]", SAMPLE, "zh") is None
    # No total in the sentence: nothing to derive from.
    assert complement_derivation("有多少道题有答案？", "37 [1]", ["其中37道题没有答案。"], "zh") is None


def test_english_total_and_part():
    text = ["Of the 412 questions in total, 37 have no answer in the documents."]
    assert complement_derivation("How many questions have an answer?", "37 [1]", text, "en").value == 375
    assert complement_derivation("How many questions have no answer?", "37 [1]", text, "en") is None


def test_the_claim_prompt_opens_like_the_evidence_prompt_so_its_evaluation_is_reused():
    for language, ask in (("zh", "这段资料"), ("en", "Can the")):
        evidence = verification_messages("Q?", "E.", language)
        claim = claim_messages("Q?", "37 [1]", "E.", language)
        opening = evidence[1]["content"].split(ask)[0]
        assert claim[0] == evidence[0] and claim[1]["content"].startswith(opening)
        assert "37" in claim[1]["content"] and "[1]" not in claim[1]["content"]
