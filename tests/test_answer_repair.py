"""Keep the right answers (issue #25): the units, full-list and claim checks, the one acceptance decision, and the
repair before refusing, each as a unit and through the pipeline (fakes for the LLM; the packaged model's own
verdicts and repairs: tests/test_keep_right_end_to_end.py)."""

from answer_fakes import FakeRetriever, ScriptedGenerator, scored

from app.config import Settings
from app.wiring import assemble_pipeline
from ingest.testing.fake_embedder import FakeEmbedder
from prompts.acceptance import decide
from prompts.answer_repair import doubtful_figure, incomplete_list, repair_messages, with_units
from prompts.checks.base import Draft, Question, Verdict
from prompts.checks.claim import ClaimCheck
from prompts.checks.constraints import ConstraintsCheck
from prompts.checks.full_list import FullListCheck
from prompts.checks.run import CheckRun
from prompts.checks.units import UnitsCheck
from prompts.question_shape import asked_for
from prompts.settings import AcceptanceModel, AnswerSettings
from prompts.templates import PackedPassage, build_messages

# Written for these tests (made-up company, people and plans).
STEPS = "东湖钢铁集团计划在2030年前实现碳达峰，并分三步推进：先淘汰落后产能，再推广氢冶金试点，最后建设碳捕集利用项目。"
BOARD = "恒远科技第五届董事会由7名董事组成，分别为张立、王芳、李建国、赵敏、陈涛、刘洋和孙悦。"
NAMES = ["张立", "王芳", "李建国", "赵敏", "陈涛", "刘洋", "孙悦"]
SAMPLE = "我们的“青鸾”内部评测集共有 412 道题，其中 37 道是资料中没有答案的“拒答题”，专门用来检验系统会不会老实说不知道。"
ZH = "zh"


def _packed(*texts: str) -> list[PackedPassage]:
    return [PackedPassage(i + 1, scored(t, i + 1), t) for i, t in enumerate(texts)]


class Verdicts:
    """A yes/no scorer answering from the prompt's last line: the claim prompt ("回答：…") gets ``claim`` (or
    ``claims[answer]`` when the answer holds that text), the evidence prompt ``evidence``."""

    def __init__(self, evidence: float, claim: float, claims: dict[str, float] | None = None) -> None:
        self.evidence, self.claim, self.claims = evidence, claim, claims or {}

    def yes_probability(self, messages, yes, no) -> float:
        content = messages[-1]["content"]
        if "回答：" in content or "Proposed answer:" in content:
            return next((p for a, p in self.claims.items() if a in content), self.claim)
        return self.evidence


class VerdictGenerator(ScriptedGenerator):
    """Scripted drafts (one per call) and fixed verdicts."""

    def __init__(self, answers: list[str], verdicts: Verdicts) -> None:
        super().__init__(answers)
        self.verdicts = verdicts

    def yes_probability(self, messages, yes, no) -> float:
        return self.verdicts.yes_probability(messages, yes, no)


def test_a_bare_figure_takes_the_unit_the_cited_sentence_writes():
    people = asked_for("运动会的志愿者有多少人？", ZH)
    assert with_units("12 [2]", people, ["参加的志愿者共12名。"]) == "12名 [2]"
    assert with_units("1.2 [1]", people, ["来自全市的1.2万名学生志愿者参与服务。"]) == "1.2万名 [1]"
    assert with_units("1.2万名学生 [1]", people, ["来自全市的1.2万名学生志愿者参与服务。"]) == "1.2万名学生 [1]"
    assert with_units("张立 [1]", asked_for("董事长是谁？", ZH), [BOARD]) == "张立 [1]"
    assert with_units("374 [1]", asked_for("How many companies are there?", "en"),
                      ["There are 374 companies in the city."]) == "374 companies [1]"


def test_fixable_defects_are_named_for_the_model_in_the_questions_language():
    steps = incomplete_list("先淘汰落后产能 [3]", asked_for("碳达峰路径分哪几步？", ZH), [STEPS], ZH, 3)
    assert "3项" in steps and "推广氢冶金试点" in steps and "[3]" in steps
    board = asked_for("第五届董事会有哪些董事？", ZH)
    assert "7项" in incomplete_list("张立、王芳、李建国 [1]", board, [BOARD], ZH, 1)
    assert incomplete_list("、".join(NAMES) + " [1]", board, [BOARD], ZH, 1) == ""
    assert incomplete_list("张立 [1]", asked_for("董事长是谁？", ZH), [BOARD], ZH, 1) == ""  # no list asked
    figure = doubtful_figure("37 [1]", asked_for("有多少道题有答案？", ZH), ["共有 412 道题，其中 37 道没有答案。"], ZH, 1)
    assert "412" in figure and "37" in figure
    messages = repair_messages([{"role": "user", "content": "q"}], "37 [1]", [figure], "有多少道题有答案？", ZH)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "37 [1]" and figure in messages[-1]["content"]
    assert "有多少道题有答案？" in messages[-1]["content"]


def test_the_units_check_repairs_and_reports_a_figureless_answer_to_a_count():
    check, question = UnitsCheck(), Question("运动会的志愿者有多少人？", ZH)
    verdict = check.check(Draft("12 [1]"), question, _packed("参加的志愿者共12名。"))
    assert verdict.passed and verdict.draft.text == "12名 [1]" and verdict.signals["unit_added"] == 1.0
    figureless = check.check(Draft("志愿者来自各高校 [1]"), question, _packed("志愿者来自各高校。"))
    assert figureless.passed and figureless.signals["shape_mismatch"] == 1.0 and figureless.draft is None


def test_the_full_list_check_names_a_short_list_as_a_defect_and_refuses_nothing():
    verdict = FullListCheck().check(Draft("张立 [1]"), Question("恒远科技第五届董事会有哪些董事？", ZH), _packed(BOARD))
    assert verdict.passed and "7项" in verdict.defect and verdict.signals["incomplete"] == 1.0
    full = FullListCheck().check(Draft("、".join(NAMES) + " [1]"), Question("第五届董事会有哪些董事？", ZH),
                                 _packed(BOARD))
    assert full.passed and full.defect == ""


def test_the_claim_check_derives_the_rest_and_asks_the_model_about_the_answer_itself():
    # The model's verdict is off by default (checked last below); the derivation runs either way.
    settings = AnswerSettings(claim_verdict=True)
    # The README's follow-up: the passage answers the question, "37" is the count of the other questions.
    follow_up = ClaimCheck(settings, Verdicts(0.9, 0.2, {"375": 0.8})).check(
        Draft("37 [1]"), Question("青鸾评测集中有多少道题是有答案的？", ZH), _packed(SAMPLE))
    assert follow_up.passed and follow_up.draft.text.startswith("375") and "412 − 37 = 375" in follow_up.draft.text
    assert follow_up.signals == {"derived": 1.0, "p_yes": 0.8}  # the verdict on the corrected answer
    first = ClaimCheck(settings, Verdicts(0.9, 0.9)).check(Draft("37道 [1]"), Question("青鸾评测集里有多少道拒答题？", ZH),
                                                          _packed(SAMPLE))
    assert first.passed and first.draft.text == "37道 [1]" and first.signals == {"p_yes": 0.9}
    # A doubted figure among several of its sentence is a defect; below refuse_claim_yes the chain refuses.
    doubted = ClaimCheck(settings.replace(refuse_claim_yes=0.3), Verdicts(0.9, 0.1)).check(
        Draft("412道 [1]"), Question("青鸾评测集里有多少道拒答题？", ZH), _packed(SAMPLE))
    assert not doubted.passed and "37" in doubted.defect and "p(yes) 0.10 < 0.3" in doubted.reason
    # Without a scorer (another backend) or with the verdict off (the default) the derivation still applies.
    for check in (ClaimCheck(settings, None), ClaimCheck(AnswerSettings(), Verdicts(0.9, 0.2))):
        derived = check.check(Draft("37 [1]"), Question("有多少道题是有答案的？", ZH), _packed(SAMPLE))
        assert derived.draft.text.startswith("375") and derived.signals == {"derived": 1.0}


def test_the_constraints_check_names_each_kind_the_evidence_speaks_against():
    question = Question("青川省2023年一季度GDP增速是多少？", ZH)
    other_year = ConstraintsCheck(AnswerSettings()).check(Draft("11.9% [1]"), question,
                                                          _packed("2021年一季度，青川省GDP同比增长11.9%。"))
    assert not other_year.passed and other_year.signals["conflict_year"] == 1.0
    undated = ConstraintsCheck(AnswerSettings()).check(Draft("5.1% [1]"), question,
                                                       _packed("据初步核算，一季度青川省GDP增速为5.1%。"))
    assert undated.passed and not any(k.startswith("conflict_") for k in undated.signals)


def _run(draft: Draft, *verdicts: tuple[str, Verdict]) -> CheckRun:
    return CheckRun(draft, list(verdicts))


def test_the_decision_weighs_the_signals_together_and_evidence_against_refuses_whatever_the_score():
    model = AcceptanceModel(intercept=0.5, threshold=0.5, weights={"evidence_logit": 1.0, "claim_logit": 1.0,
                                                                   "conflict_name": -2.0})
    draft = Draft("5.1% [1]")

    def verdicts(evidence: float, claim: float, **constraints: float) -> CheckRun:
        return _run(draft, ("verification", Verdict.ok(signals={"p_yes": evidence})),
                    ("claim", Verdict.ok(signals={"p_yes": claim})),
                    ("constraints", Verdict(not constraints, reason="the cited passages give 2021, not 2023",
                                            signals=constraints)))

    sure = decide(verdicts(0.9, 0.8), draft, model, cross_language=False)
    assert sure.accepted and sure.signals["score"] > 0.5 and sure.signals["overruled"] == 0.0
    doubtful = decide(verdicts(0.55, 0.1), draft, model, cross_language=False)
    assert not doubtful.accepted and "p(yes): evidence 0.55, answer 0.10" in doubtful.reason
    # One low verdict is outweighed by a confident other one: no single veto ...
    assert decide(verdicts(0.4, 0.95), draft, model, cross_language=False).accepted
    # ... a name the passage never writes weighs against ...
    assert decide(verdicts(0.9, 0.8, conflict_name=1.0), draft, model, False).score < sure.score
    # ... and another year refuses however sure the model is, with the check's own reason.
    against = decide(verdicts(0.99, 0.99, conflict_year=1.0), draft, model, cross_language=False)
    assert not against.accepted and against.overruled and "give 2021, not 2023" in against.reason
    # A veto check's refusal stands too.
    invented = _run(draft, ("retry_numbers", Verdict.refuse("its second answer states 7")),
                    ("verification", Verdict.ok(signals={"p_yes": 0.99})))
    assert not decide(invented, Draft("7 [1]", retried=True), model, cross_language=False).accepted


def _pipeline(drafts: list[str], verdicts: Verdicts, passages: list[str], **answer) -> tuple:
    settings = Settings()
    settings.answer = settings.answer.replace(**answer)
    generator = VerdictGenerator(drafts, verdicts)
    pipeline = assemble_pipeline(FakeRetriever([scored(t, i + 1) for i, t in enumerate(passages)]), generator,
                                 FakeEmbedder(dimension=256), settings)
    return pipeline, generator


def test_a_short_list_is_repaired_once_with_the_finding_and_the_repaired_answer_checked_the_same_way():
    full = "、".join(NAMES) + " [1]"
    pipeline, generator = _pipeline(["张立 [1]", full], Verdicts(0.9, 0.9), [BOARD], repair_defects="always")
    answer = pipeline.answer("恒远科技第五届董事会有哪些董事？")
    assert not answer.refused and answer.text == full
    assert len(generator.calls) == 2 and "7项" in generator.calls[1][-1]["content"]
    assert generator.calls[1][-2] == {"role": "assistant", "content": "张立 [1]"}
    assert answer.signals["repair.kept"] == 1.0 and "repair" in answer.timings
    # A repaired answer that fails the checks leaves the first one standing.
    pipeline, generator = _pipeline(["张立 [1]", "2021年的董事是周明 [1]"], Verdicts(0.9, 0.9), [BOARD],
                                    repair_defects="always",
                                    checks=("citations", "full_list", "constraints", "lexical_support"),
                                    min_lexical_support=0.9, min_lexical_tokens=2)
    answer = pipeline.answer("恒远科技第五届董事会有哪些董事？")
    assert not answer.refused and answer.text == "张立 [1]" and answer.signals["repair.kept"] == 0.0
    # Only before refusing (the default): a kept draft is not sent back; off: never.
    for mode in ("refused", "off"):
        pipeline, generator = _pipeline(["张立 [1]"], Verdicts(0.9, 0.9), [BOARD], repair_defects=mode)
        assert pipeline.answer("恒远科技第五届董事会有哪些董事？").text == "张立 [1]" and len(generator.calls) == 1


def test_a_draft_about_to_be_refused_is_repaired_first():
    # The model's verdict doubts "412" for the questions without answers (its sentence also gives 37): refused by
    # the claim verdict (refuse_claim_yes), repaired with that finding, and the repaired "37道" kept.
    pipeline, generator = _pipeline(["412道 [1]", "37道 [1]"], Verdicts(0.9, 0.1, {"37道": 0.9}), [SAMPLE],
                                    refuse_claim_yes=0.3)
    answer = pipeline.answer("青鸾评测集里有多少道拒答题？")
    assert not answer.refused and answer.text == "37道 [1]" and answer.signals["repair.kept"] == 1.0
    assert "37" in generator.calls[1][-1]["content"] and "412道" in generator.calls[1][-1]["content"]


def test_the_pipeline_decides_by_the_acceptance_score_when_configured():
    model = AcceptanceModel(intercept=0.0, threshold=0.5, weights={"evidence_logit": 1.0, "claim_logit": 1.0})
    question = "青川省一季度GDP增速是多少？"
    passages = ["据初步核算，一季度青川省GDP增速为5.1%。"]
    # The chain refuses on the evidence verdict alone; the decision keeps the answer the claim verdict backs.
    chain, _ = _pipeline(["5.1% [1]"], Verdicts(0.6, 0.95), passages, min_verification_yes_zh=0.7)
    assert chain.answer(question).refused
    decided, _ = _pipeline(["5.1% [1]"], Verdicts(0.6, 0.95), passages, min_verification_yes_zh=0.7,
                           decision="acceptance", acceptance=model, claim_verdict=True)
    answer = decided.answer(question)
    assert not answer.refused and answer.signals["acceptance.score"] > 0.5
    assert answer.signals["verification.p_yes"] == 0.6 and answer.signals["claim.p_yes"] == 0.95
    doubted, _ = _pipeline(["5.1% [1]"], Verdicts(0.3, 0.2), passages, decision="acceptance", acceptance=model,
                           claim_verdict=True)
    refused = doubted.answer(question)
    assert refused.refused and "acceptance" in refused.refusal_reason and refused.withdrawn == "5.1% [1]"


def test_the_answer_prompt_asks_for_the_unit_or_the_full_list_when_configured():
    plain = build_messages("运动会的志愿者有多少人？", [], ZH, "无法回答。")[-1]["content"]
    asked = build_messages("运动会的志愿者有多少人？", [], ZH, "无法回答。", state_shape=True)[-1]["content"]
    assert asked == plain + "\n回答数量时写出数字和单位。"
    assert build_messages("第五届董事会有哪些董事？", [], ZH, "无法回答。", state_shape=True)[-1]["content"].endswith(
        "请列出资料中的全部项。")
    who = build_messages("董事长是谁？", [], ZH, "无法回答。", state_shape=True)[-1]["content"]
    assert who == build_messages("董事长是谁？", [], ZH, "无法回答。")[-1]["content"]


def test_a_follow_ups_previous_question_and_the_shape_hint_go_together():
    # A follow-up asked beside its previous question (#26) still gets the unit line (#25), after the question.
    content = build_messages("那有多少人？", [], ZH, "无法回答。", previous_question="运动会招募了志愿者吗？",
                             state_shape=True)[-1]["content"]
    assert "（接着上一个问题：运动会招募了志愿者吗？）\n问题：那有多少人？" in content
    assert content.endswith("\n回答数量时写出数字和单位。")
