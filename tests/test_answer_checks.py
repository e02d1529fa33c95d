"""Answer checks are parts of a list: adding one is one new file and one settings entry, the order is the
settings', the pipeline runs whatever it is given, and every verdict's signals reach the Answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from answer_fakes import FakeRetriever, ScriptedGenerator, scored

from app.answer.answer_pipeline import AnswerPipeline
from app.config import ConfigError, Settings, load_settings
from app.wiring import assemble_pipeline, build_answer_checks
from ingest.testing.fake_embedder import FakeEmbedder
from prompts.checks.base import Draft, Question, Verdict
from prompts.checks.registry import CheckParts
from prompts.checks.run import run_checks
from prompts.templates import PackedPassage
from retrieval.results import ScoredChunk

PASSAGES = [scored("通义千问模型由阿里云开发。它支持中文和英文。", 1, dense=0.9),
            scored("北京是中国的首都。", 2, dense=0.8)]


class NoExclamationCheck:
    """A check written for this test, as a user would in a file of their own: refuses an exclamation mark and
    reports how many it found as a signal."""

    name = "no_exclamation"

    def __init__(self, parts: CheckParts) -> None:
        self.refusal = parts.settings.refusal_en

    def check(self, draft: Draft, question: Question, passages: Sequence[PackedPassage]) -> Verdict:
        marks = draft.text.count("!") + draft.text.count("！")
        if marks:
            return Verdict.refuse(f"{draft.described_as} shouts", signals={"marks": marks},
                                  defect="write the answer without exclamation marks")
        return Verdict.ok(signals={"marks": 0})


class LatinOnlyGate:
    """A gate written for this test: refuses before generation unless some packed passage has Latin letters."""

    name = "latin_only"

    def __init__(self, parts: CheckParts) -> None:
        pass

    def check_passages(self, question: Question, passages: Sequence[PackedPassage],
                       retrieved: Sequence[ScoredChunk]) -> Verdict:
        if any(re.search(r"[A-Za-z]", p.text) for p in passages):
            return Verdict.ok()
        return Verdict.refuse("no passage has a Latin letter")


def _pipeline(answer: str, settings: Settings) -> tuple[AnswerPipeline, ScriptedGenerator]:
    generator = ScriptedGenerator(answer)
    return assemble_pipeline(FakeRetriever(list(PASSAGES)), generator, FakeEmbedder(dimension=256), settings), generator


def test_a_check_defined_elsewhere_is_one_settings_entry_and_runs_in_its_place(tmp_path: Path) -> None:
    config = tmp_path / "docqa.toml"
    config.write_text('[answer]\nchecks = ["citations", "test_answer_checks:NoExclamationCheck", "constraints"]\n',
                      encoding="utf-8")
    settings = load_settings(config, data_dir=tmp_path)
    pipeline, _ = _pipeline("通义千问模型由阿里云开发！[1][7]", settings)
    assert [c.name for c in pipeline.checks] == ["citations", "no_exclamation", "constraints"]
    answer = pipeline.answer("通义千问是谁开发的？")
    # The citations check ran first: the refusal quotes nothing, but the reason names the repaired draft.
    assert answer.refused and answer.refusal_reason == "the answer shouts"
    assert answer.signals["no_exclamation.marks"] == 1 and answer.signals["citations.invalid"] == 1
    assert "constraints.missing" not in answer.signals  # the list stops at the first refusal
    calm, _ = _pipeline("通义千问模型由阿里云开发[1]。", settings)
    answer = calm.answer("通义千问是谁开发的？")
    assert not answer.refused and answer.signals["no_exclamation.marks"] == 0
    assert {"check_citations", "check_no_exclamation", "check_constraints"} <= answer.timings.keys()


def test_a_gate_defined_elsewhere_refuses_before_the_model_is_called() -> None:
    settings = Settings()
    settings.answer.gates = ("evidence_score", "test_answer_checks:LatinOnlyGate")
    pipeline, generator = _pipeline("不该生成", settings)
    answer = pipeline.answer("通义千问是谁开发的？")
    assert answer.refused and answer.refusal_reason == "no passage has a Latin letter" and generator.calls == []
    assert answer.signals["evidence_score.best_score"] == pytest.approx(0.9)


def test_the_order_is_the_settings_order() -> None:
    # A long answer invented from the model's own knowledge, which also shouts: the first check listed decides.
    invented = "通义千问是一个非常强大的模型，它可以写诗、翻译、编程、回答各种各样的问题，还能陪人聊天解闷！[1]"
    for order, reason in ((("lexical_support", "test_answer_checks:NoExclamationCheck"), "grounding check"),
                          (("test_answer_checks:NoExclamationCheck", "lexical_support"), "the answer shouts")):
        settings = Settings()
        settings.answer.checks = order
        answer = _pipeline(invented, settings)[0].answer("通义千问能做什么？")
        assert answer.refused and answer.refusal_reason.startswith(reason), order


def test_the_pipeline_runs_the_list_it_is_given_and_knows_no_check() -> None:
    settings = Settings()
    generator = ScriptedGenerator("通义千问模型由阿里云开发[1][7]。")
    bare = AnswerPipeline(FakeRetriever(list(PASSAGES)), generator, settings, gates=[], checks=[])
    answer = bare.answer("通义千问是谁开发的？")
    # No citations check: the invalid [7] stays in the text (only valid numbers become citations).
    assert not answer.refused and answer.text == "通义千问模型由阿里云开发[1][7]。"
    assert [c.number for c in answer.citations] == [1] and answer.checks == [] and answer.signals == {}


def test_the_default_lists_are_todays_checks_in_todays_order() -> None:
    gates, checks = build_answer_checks(Settings(), ScriptedGenerator(""), FakeEmbedder(dimension=256))
    assert [g.name for g in gates] == ["evidence_score", "question_names"]
    assert [c.name for c in checks] == ["citations", "retry_numbers", "marker_quote", "script", "units", "full_list",
                                        "constraints", "verification", "claim", "sentence_support", "lexical_support"]


def test_an_unknown_check_is_a_one_line_configuration_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DOCQA_ANSWER__CHECKS", '["citations", "spellcheck"]')
    with pytest.raises(ConfigError, match=r"answer\.checks: .*'spellcheck' is no module of prompts/checks/") as caught:
        load_settings(data_dir=tmp_path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("setting", "entry", "message"), [
    ("checks", "test_answer_checks:Missing", r"answer\.checks: 'test_answer_checks:Missing': .* no callable 'Missing'"),
    ("checks", "no_such_module_anywhere:Check", r"answer\.checks: 'no_such_module_anywhere:Check' names no module"),
    ("checks", "test_answer_checks:LatinOnlyGate", r"answer\.checks: .* builds a LatinOnlyGate, not an answer check"),
    ("gates", "constraints", r"answer\.gates: 'constraints' builds a ConstraintsCheck, not a passage gate"),
])
def test_an_entry_that_builds_no_check_of_its_kind_is_named(setting: str, entry: str, message: str) -> None:
    settings = Settings()
    setattr(settings.answer, setting, (entry,))
    with pytest.raises(ConfigError, match=message):
        build_answer_checks(settings, ScriptedGenerator(""), FakeEmbedder(dimension=256))


def test_every_verdict_can_be_collected_for_a_decision_that_weighs_them() -> None:
    settings = Settings()
    settings.answer.checks = ("citations", "test_answer_checks:NoExclamationCheck", "lexical_support")
    _, checks = build_answer_checks(settings, ScriptedGenerator(""), FakeEmbedder(dimension=256))
    packed = [PackedPassage(i + 1, p, p.text) for i, p in enumerate(PASSAGES)]
    draft, question = Draft("通义千问模型由阿里云开发！[1][7]"), Question("通义千问是谁开发的？", "zh")
    vetoed = run_checks(checks, draft, question, packed)
    everything = run_checks(checks, draft, question, packed, until_refused=False)
    assert [name for name, _ in vetoed.verdicts] == ["citations", "no_exclamation"]
    assert [name for name, _ in everything.verdicts] == ["citations", "no_exclamation", "lexical_support"]
    assert everything.refusal.reason == vetoed.refusal.reason == "the answer shouts"
    assert everything.refusal.defect == "write the answer without exclamation marks"
    assert everything.draft.text == "通义千问模型由阿里云开发！[1]"  # repaired by the citations check
    assert "lexical_support.tokens" in everything.signals and "lexical_support.tokens" not in vetoed.signals


def test_an_answer_is_written_in_the_script_of_the_passages_it_cites() -> None:
    from prompts.checks.script import ScriptCheck
    from prompts.script_alignment import align_script

    passage = "十字軍東征使歐洲開始與伊斯蘭世界接觸，後來被美國電影學會選為經典。"
    assert align_script("十字军東征 [1]", [passage]) == "十字軍東征 [1]"
    assert align_script("美国电影學會", [passage]) == "美國電影學會"
    # A character the passages do not write in any form stays; so do Latin text, digits and simplified passages.
    assert align_script("十字军很长 GPT-3 12", [passage]) == "十字軍很长 GPT-3 12"
    assert align_script("头发", ["她的头发"]) == "头发" and align_script("頭髮", ["她的头发"]) == "头发"
    packed = [PackedPassage(1, scored("无关的简体资料。", 1), "无关的简体资料。"),
              PackedPassage(2, scored(passage, 2), passage)]
    verdict = ScriptCheck().check(Draft("十字军東征 [2]"), Question("因为什么事件？", "zh"), packed)
    assert verdict.passed and verdict.draft.text == "十字軍東征 [2]" and verdict.signals == {"aligned": 1.0}
    unchanged = ScriptCheck().check(Draft("十字軍東征 [2]"), Question("因为什么事件？", "zh"), packed)
    assert unchanged.draft is None and unchanged.signals == {"aligned": 0.0}
