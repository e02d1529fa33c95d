"""Issue #25 on the packaged LLM: the decision (prompts/answer_decision.py) with the model's real yes/no verdicts,
and the repair path with the model writing the repaired answer.

The first drafts here are given, not generated: they are the defective drafts the issue reports the packaged model
writing ("37 [1]" for the questions *with* answers; one director of seven), so the path they take is certain;
everything after them — both verdicts, the derivation, the repair prompt, the model's repaired answer and its
decision — is real. The whole answer pipeline over these drafts is measured in bench/RESULTS_KEEP_RIGHT.md."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

# The sample corpus's own sentence (data/sample/rag_notes.md), which the README's chat example is about.
SAMPLE = ("评估要分开看检索和生成。我们的“青鸾”内部评测集共有 412 道题，其中 37 道是资料中没有答案的“拒答题”，"
          "专门用来检验系统会不会老实说不知道。")
# Written for this test (made-up company and people).
BOARD = "恒远科技第五届董事会由7名董事组成，分别为张立、王芳、李建国、赵敏、陈涛、刘洋和孙悦。"
KINDS = frozenset({"year", "date", "relative_time", "unit", "relation", "name"})


@pytest.fixture(scope="module")
def llm(packaged_models_dir, packaged_gguf_path):
    from app.config import Settings
    from app.wiring import build_generator

    settings = Settings(model_cache_dir=packaged_models_dir)
    settings.generation.n_threads = 2
    settings.generation.max_new_tokens = 96
    return build_generator(settings), settings


def _packed(*texts: str):
    from answer_fakes import scored

    from prompts.templates import PackedPassage

    return [PackedPassage(i + 1, scored(t, i + 1), t) for i, t in enumerate(texts)]


def test_the_readme_follow_up_is_answered_375_by_the_cited_figures(llm):
    from prompts.answer_decision import decide

    generator, settings = llm
    packed = _packed(SAMPLE)
    follow_up = decide("青鸾评测集中有多少道题是有答案的？", "37 [1]", packed, "zh", settings.answer, generator, KINDS)
    assert follow_up.accepted, follow_up.reason
    assert follow_up.text.startswith("375") and follow_up.derived == "412 − 37 = 375"
    first = decide("青鸾评测集里有多少道拒答题？", "37 [1]", packed, "zh", settings.answer, generator, KINDS)
    assert first.accepted and first.text.startswith("37道"), first.reason


def test_a_list_shorter_than_the_cited_one_is_repaired_by_the_model_and_checked_again(llm):
    from prompts.answer_decision import decide
    from prompts.answer_repair import repair_messages
    from prompts.templates import build_messages

    generator, settings = llm
    question = "恒远科技第五届董事会有哪些董事？"
    packed = _packed(BOARD)
    first = decide(question, "张立 [1]", packed, "zh", settings.answer, generator, KINDS)
    assert first.wants_repair and first.finding.kind == "incomplete_list" and "7项" in first.finding.note
    messages = repair_messages(build_messages(question, packed, "zh", settings.answer.refusal_zh), "张立 [1]",
                               first.finding, question, "zh")
    repaired = "".join(generator.stream(messages, settings.generation)).strip()
    second = decide(question, repaired, packed, "zh", settings.answer, generator, KINDS)
    names = ["张立", "王芳", "李建国", "赵敏", "陈涛", "刘洋", "孙悦"]
    assert sum(n in repaired for n in names) > 1, repaired  # the model listed more than the one it had
    assert second.accepted, second.reason
    assert second.finding is None or sum(n in repaired for n in names) < len(names)
