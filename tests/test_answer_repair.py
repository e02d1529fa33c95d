"""Repair before refusing, and the one acceptance decision (prompts/answer_repair.py, prompts/acceptance.py)."""

from prompts.acceptance import AcceptanceModel, acceptance_score, features
from prompts.answer_repair import find_defect, repair_messages, with_units
from prompts.answer_signals import AnswerSignals
from prompts.question_shape import asked_for

STEPS = "东湖钢铁集团计划在2030年前实现碳达峰，并分三步推进：先淘汰落后产能，再推广氢冶金试点，最后建设碳捕集利用项目。"
BOARD = "恒远科技第五届董事会由7名董事组成，分别为张立、王芳、李建国、赵敏、陈涛、刘洋和孙悦。"


def test_a_bare_figure_takes_the_unit_the_cited_sentence_writes():
    people = asked_for("运动会的志愿者有多少人？", "zh")
    assert with_units("12 [2]", people, ["参加的志愿者共12名。"]) == "12名 [2]"
    assert with_units("1.2 [1]", people, ["来自全市的1.2万名学生志愿者参与服务。"]) == "1.2万名 [1]"
    assert with_units("1.2万名学生 [1]", people, ["来自全市的1.2万名学生志愿者参与服务。"]) == "1.2万名学生 [1]"
    assert with_units("张立 [1]", asked_for("董事长是谁？", "zh"), [BOARD]) == "张立 [1]"


def test_fixable_defects_are_named_for_the_model():
    steps = find_defect("先淘汰落后产能 [3]", asked_for("碳达峰路径分哪几步？", "zh"), [STEPS], "zh", False, False, 3)
    assert steps.kind == "incomplete_list" and "3项" in steps.note and "推广氢冶金试点" in steps.note
    board = find_defect("张立、王芳、李建国 [1]", asked_for("第五届董事会有哪些董事？", "zh"), [BOARD], "zh", False, False, 1)
    assert board.kind == "incomplete_list" and "7项" in board.note
    assert find_defect("、".join("张立 王芳 李建国 赵敏 陈涛 刘洋 孙悦".split()) + " [1]",
                       asked_for("第五届董事会有哪些董事？", "zh"), [BOARD], "zh", False, False, 1) is None
    figure = find_defect("37 [1]", asked_for("有多少道题有答案？", "zh"), ["共有 412 道题，其中 37 道没有答案。"], "zh",
                         False, True, 1)
    assert figure.kind == "doubtful_figure" and "412" in figure.note
    assert find_defect("[1]", asked_for("谁？", "zh"), [], "zh", True, False, 1).kind == "markers_only"
    messages = repair_messages([{"role": "user", "content": "q"}], "37 [1]", figure, "有多少道题有答案？", "zh")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"] and "有多少道题有答案？" in messages[-1]["content"]


def test_the_decision_weighs_the_signals_together():
    model = AcceptanceModel(intercept=0.5, threshold=0.5, weights={"evidence_logit": 1.0, "claim_logit": 1.0,
                                                                   "conflict_name": -2.0})
    sure = AnswerSignals(p_yes_evidence=0.9, p_yes_claim=0.8)
    doubtful = AnswerSignals(p_yes_evidence=0.55, p_yes_claim=0.1)
    against = AnswerSignals(p_yes_evidence=0.9, p_yes_claim=0.8, conflicts={"name": "do not mention 'MMLU'"})
    assert acceptance_score(sure, model) > model.threshold > acceptance_score(doubtful, model)
    assert acceptance_score(against, model) < acceptance_score(sure, model)
    # One low verdict is outweighed by a confident other one: no single veto.
    assert acceptance_score(AnswerSignals(p_yes_evidence=0.4, p_yes_claim=0.95), model) > model.threshold
    assert features(AnswerSignals(asked="count", has_figure=False), model)["shape_mismatch"] == 1.0


class _Verdicts:
    """A yes/no scorer answering from the last line of the prompt: the claim prompt gets ``claim`` (or
    ``claims[answer]``), the evidence prompt ``evidence``."""

    def __init__(self, evidence: float, claim: float, claims: dict[str, float] | None = None) -> None:
        self.evidence, self.claim, self.claims = evidence, claim, claims or {}

    def yes_probability(self, messages, yes, no) -> float:
        content = messages[-1]["content"]
        if "回答：" in content or "Proposed answer:" in content:
            return next((p for a, p in self.claims.items() if a in content), self.claim)
        return self.evidence


def _packed(*texts: str):
    from prompts.templates import PackedPassage
    from tests.answer_fakes import scored

    return [PackedPassage(i + 1, scored(t, i + 1), t) for i, t in enumerate(texts)]


SAMPLE = "我们的“青鸾”内部评测集共有 412 道题，其中 37 道是资料中没有答案的“拒答题”，专门用来检验系统会不会老实说不知道。"
KINDS = frozenset({"year", "date", "relative_time", "unit", "relation", "name"})


def test_the_readme_follow_up_is_answered_375_not_37():
    from prompts.answer_decision import decide
    from prompts.settings import AnswerSettings

    decision = decide("青鸾评测集中有多少道题是有答案的？", "37 [1]", _packed(SAMPLE), "zh", AnswerSettings(),
                      _Verdicts(0.9, 0.2, {"375": 0.8}), KINDS)
    assert decision.accepted and decision.text.startswith("375") and decision.derived == "412 − 37 = 375"
    kept = decide("青鸾评测集里有多少道拒答题？", "37 [1]", _packed(SAMPLE), "zh", AnswerSettings(),
                  _Verdicts(0.9, 0.9), KINDS)
    assert kept.accepted and kept.text == "37道 [1]"  # with the unit its sentence writes


def test_a_draft_the_evidence_speaks_against_is_refused_and_one_it_is_silent_on_kept():
    from prompts.answer_decision import decide
    from prompts.settings import AnswerSettings

    question = "青川省2023年一季度GDP增速是多少？"
    undated = decide(question, "5.1% [1]", _packed("据初步核算，一季度青川省GDP增速为5.1%。"), "zh", AnswerSettings(),
                     _Verdicts(0.9, 0.9), KINDS)
    assert undated.accepted and not undated.signals.conflicts
    other_year = decide(question, "11.9% [1]", _packed("2021年一季度，青川省GDP同比增长11.9%。"), "zh",
                        AnswerSettings(), _Verdicts(0.99, 0.99), KINDS)  # evidence against: refused however sure
    assert not other_year.accepted and "give 2021, not 2023" in other_year.reason
    short_list = decide("碳达峰路径分哪几步？", "先淘汰落后产能 [1]", _packed(STEPS), "zh", AnswerSettings(),
                        _Verdicts(0.9, 0.9), KINDS)
    assert short_list.accepted and short_list.wants_repair and short_list.finding.kind == "incomplete_list"


def test_an_english_figure_keeps_its_space():
    assert with_units("374 [1]", asked_for("How many companies are there?", "en"),
                      ["There are 374 companies in the city."]) == "374 companies [1]"
