"""The answer pipeline's logic with fakes: event order, the gate, refusals, citation clean-up, limits."""

from __future__ import annotations

import pytest
from answer_fakes import FakeRetriever, ScriptedGenerator, scored

from app.answer.answer_pipeline import (
    AnswerPipeline,
    DoneEvent,
    PassagesEvent,
    QuestionError,
    RetryEvent,
    TokenEvent,
)
from app.config import Settings
from app.wiring import assemble_pipeline
from ingest.testing.fake_embedder import FakeEmbedder

PASSAGES = [scored("通义千问模型由阿里云开发。它支持中文和英文。", 1, dense=0.9),
            scored("北京是中国的首都。", 2, dense=0.8)]


def make(answer: str, passages=PASSAGES, **answer_overrides) -> tuple[AnswerPipeline, ScriptedGenerator]:
    settings = Settings()
    for key, value in answer_overrides.items():
        setattr(settings.answer, key, value)
    generator = ScriptedGenerator(answer)
    return assemble_pipeline(FakeRetriever(list(passages)), generator, FakeEmbedder(dimension=256), settings), generator


def test_events_come_in_order_and_the_answer_is_cited_and_checked():
    pipeline, generator = make("通义千问模型由阿里云开发[1][5]。")
    events = list(pipeline.stream("通义千问是谁开发的？"))
    assert isinstance(events[0], PassagesEvent) and len(events[0].passages) == 2
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert "".join(tokens) == "通义千问模型由阿里云开发[1][5]。"
    answer = events[-1].answer
    assert isinstance(events[-1], DoneEvent) and not answer.refused
    assert answer.text == "通义千问模型由阿里云开发[1]。"
    assert [c.number for c in answer.citations] == [1]
    assert answer.citations[0].quoted_text == PASSAGES[0].text
    assert answer.checks and answer.checks[0].supported
    assert answer.language == "zh"
    assert {"retrieve", "first_token", "generate", "tokens_per_s"} <= answer.timings.keys()
    # The prompt the model got is the grounded template with both passages numbered.
    user = generator.calls[0][1]["content"]
    assert "<passage id=1" in user and "<passage id=2" in user


def test_gate_refuses_without_calling_the_model():
    pipeline, generator = make("不该生成", min_evidence_score=0.95)
    answer = pipeline.answer("通义千问是谁开发的？")
    assert answer.refused and answer.text == Settings().answer.refusal_zh
    assert "evidence gate" in answer.refusal_reason and generator.calls == []
    assert answer.passages  # still shown, so a user can see what was close


def test_a_name_the_passages_never_mention_is_refused_without_calling_the_model():
    pipeline, generator = make("不该生成")
    answer = pipeline.answer("通义千问和 GPTQ 量化有什么关系？")
    assert answer.refused and answer.text == Settings().answer.refusal_zh and generator.calls == []
    assert answer.refusal_reason == "the passages never mention 'GPTQ'"
    # With the gate off the model is called (the evidence check, which would still see the name missing from
    # the cited passage, is off here too).
    pipeline, generator = make("不该生成", require_question_names=False, evidence_checks=())
    assert not pipeline.answer("通义千问和 GPTQ 量化有什么关系？").refused and generator.calls


def test_a_refusal_is_retried_once_without_the_refusal_option():
    refusal = Settings().answer.refusal_zh
    pipeline, generator = make([refusal, "通义千问模型由阿里云开发[1]。"])
    events = list(pipeline.stream("通义千问是谁开发的？"))
    retry = [i for i, e in enumerate(events) if isinstance(e, RetryEvent)]
    assert len(retry) == 1 and "".join(e.text for e in events[:retry[0]] if isinstance(e, TokenEvent)) == refusal
    answer = events[-1].answer
    assert not answer.refused and answer.text == "通义千问模型由阿里云开发[1]。"
    assert len(generator.calls) == 2
    assert refusal in generator.calls[0][0]["content"] and refusal not in generator.calls[1][0]["content"]
    assert generator.calls[0][1] == generator.calls[1][1]  # same passages and question


def test_a_second_refusal_or_an_ungrounded_retry_is_a_refusal():
    refusal = Settings().answer.refusal_zh
    pipeline, generator = make(refusal)
    answer = pipeline.answer("通义千问是谁开发的？")
    assert answer.refused and answer.refusal_reason.endswith("(asked twice)") and len(generator.calls) == 2
    invented = "通义千问由一家位于火星的量子计算公司在二十二世纪独立研发，训练数据全部来自外星文明的档案馆[1]。"
    pipeline, _ = make([refusal, invented])
    answer = pipeline.answer("通义千问是谁开发的？")
    assert answer.refused and "grounding check" in answer.refusal_reason


def test_a_retried_answer_with_a_number_the_passages_lack_is_a_refusal():
    refusal = Settings().answer.refusal_zh
    pipeline, _ = make([refusal, "通义千问是2019年发布的[1]。"])
    answer = pipeline.answer("通义千问是哪一年发布的？")
    assert answer.refused and "states 2019, which the passages do not contain" in answer.refusal_reason
    # The first answer is not held to this: the model could still refuse there. (The evidence check, which
    # would see that the passage gives no time for a "when" question, is off to isolate the number check.)
    pipeline, _ = make("通义千问是2019年发布的[1]。", evidence_checks=())
    assert not pipeline.answer("通义千问是哪一年发布的？").refused


def test_no_retry_when_switched_off():
    pipeline, generator = make(Settings().answer.refusal_zh, retry_refusals=False)
    assert pipeline.answer("通义千问是谁开发的？").refused and len(generator.calls) == 1


def test_across_languages_the_retry_asks_for_an_answer_in_the_passages_language():
    # English question over Chinese passages: only a Chinese second answer can be checked word by word.
    refusal_en = Settings().answer.refusal_en
    pipeline, generator = make([refusal_en, "通义千问模型由阿里云开发[1]。"])
    answer = pipeline.answer("Who developed Tongyi Qianwen?")
    assert not answer.refused and answer.text == "通义千问模型由阿里云开发[1]。" and answer.language == "en"
    assert "文档问答助手" in generator.calls[1][0]["content"] and "Who developed" in generator.calls[1][1]["content"]
    pipeline, _ = make([refusal_en, "Alibaba Cloud developed it in 2023 [1]."])
    answer = pipeline.answer("Who developed Tongyi Qianwen?")
    assert answer.refused and answer.text == refusal_en
    assert "not in the passages' language" in answer.refusal_reason and "Alibaba Cloud" in answer.refusal_reason


def test_model_refusal_is_recognised_in_the_question_language():
    refusal_en = Settings().answer.refusal_en
    pipeline, _ = make(refusal_en + " [1]")
    answer = pipeline.answer("Who founded the company?")
    assert answer.refused and answer.text == refusal_en and answer.language == "en"
    assert answer.citations == [] and answer.checks == []


def test_unsupported_sentence_is_flagged_not_hidden():
    # Mostly grounded, so the lexical grounding check keeps it; the one unsupported sentence is flagged.
    pipeline, _ = make("通义千问模型由阿里云开发，它支持中文和英文[1]。月球由奶酪构成[2]。")
    answer = pipeline.answer("通义千问是谁开发的？")
    assert [c.supported for c in answer.checks] == [True, False]
    assert "月球由奶酪构成" in answer.text


def test_question_limits_are_clear_errors():
    pipeline, _ = make("x")
    with pytest.raises(QuestionError, match="empty"):
        pipeline.answer("   ")
    limit = Settings().limits.max_question_chars
    with pytest.raises(QuestionError, match=f"{limit + 1} characters; the limit is {limit}"):
        pipeline.answer("问" * (limit + 1))


def test_passages_are_packed_to_the_context_budget():
    long_passages = [scored("这是一句很长的资料内容。" * 40, i, dense=0.9) for i in range(1, 6)]
    pipeline, generator = make("答[1]。", passages=long_passages, context_budget_tokens=1200, packing="chunks")
    pipeline.answer("资料说了什么？")
    user = generator.calls[0][1]["content"]
    assert user.count("<passage id=") < 5  # the budget (characters here) holds only some of them


def test_sentence_packing_sends_the_bearing_sentences_and_cites_their_offsets():
    passage = scored("今天天气很好。大家去公园散步。长城全长约两万一千公里。湖边有很多鸭子。晚上下了雨。", 1, dense=0.9)
    pipeline, generator = make("长城全长约两万一千公里[1]。", passages=[passage], packing="sentences",
                               focus_sentences=1, neighbour_sentences=0)
    answer = pipeline.answer("长城全长多少公里？")
    user = generator.calls[0][1]["content"]
    assert "长城全长约两万一千公里。" in user and "鸭子" not in user
    [citation] = answer.citations
    [(start, end)] = citation.spans
    assert passage.text[start:end] == citation.quoted_text == "长城全长约两万一千公里。"


def test_an_answer_of_markers_alone_becomes_a_quote_of_the_cited_passage():
    pipeline, _ = make("[1]。")
    answer = pipeline.answer("这个模型支持中文和英文吗？")
    assert not answer.refused
    assert answer.text == "资料 [1] 原文：“它支持中文和英文。” [1]"
    assert [c.number for c in answer.citations] == [1]


def test_markers_alone_with_nothing_to_quote_are_kept():
    # An English question shares no word with the Chinese passage: no sentence to pick, the markers stay.
    pipeline, _ = make("[2]")
    assert pipeline.answer("Which city is the capital?").text == "[2]"


def test_warm_up_hands_the_generator_prompts_that_differ_only_in_the_question():
    # A generator with a prompt cache (llama_cpp) has warm_up, and it can verify evidence (yes_probability).
    generator = _Verifying(["答[1]。"], p_yes=0.9)
    pipeline = assemble_pipeline(FakeRetriever(list(PASSAGES)), generator, FakeEmbedder(dimension=256), Settings())
    calls = []
    generator.warm_up = calls.append
    pipeline.warm_up()
    # Per language (English, then Chinese): the follow-up rewrite, the evidence verification, the answer prompt
    # (the verdict on the answer itself is off by default: [answer] claim_verdict).
    assert len(calls) == 6
    for first, second in calls:
        assert first[0] == second[0]  # the same system message
        assert first[-1]["content"] != second[-1]["content"]  # what changes per question differs
    pipeline.settings.dialogue = pipeline.settings.dialogue.replace(follow_up="append")
    # Changed in place: the checks read the pipeline's own [answer] section when they run.
    pipeline.settings.answer.min_verification_yes_zh = pipeline.settings.answer.min_verification_yes_en = 0
    calls.clear()
    pipeline.warm_up()
    assert len(calls) == 2  # nothing to rewrite or verify: the answer prompts only
    pipeline.settings.answer.claim_verdict = True
    calls.clear()
    pipeline.warm_up()
    assert len(calls) == 4  # and the claim verdicts when they are asked for
    assert "资料" in calls[-1][0][0]["content"]  # Chinese last: its state is what the cache holds afterwards


# Three passages of ~150 characters (= tokens for the scripted generator): a first pass of 200 holds the first only.
STAGED = [scored("通义千问模型由阿里云开发。" + "它支持中文和英文。" * 15, 1, dense=0.9),
          scored("北京是中国的首都，" + "也是一座历史悠久的城市。" * 12, 2, dense=0.85),
          scored("长城全长约两万一千公里，" + "东起山海关，西至嘉峪关。" * 11, 3, dense=0.8)]


def _staged(answers: list[str], **overrides) -> tuple[AnswerPipeline, ScriptedGenerator]:
    return make(answers, passages=STAGED, **{"first_pass_budget_tokens": 200, "context_budget_tokens": 1000,
                                             **overrides})


def test_the_first_pass_reads_the_best_passage_only_and_its_answer_stands():
    pipeline, generator = _staged(["通义千问模型由阿里云开发[1]。"])
    events = list(pipeline.stream("通义千问是谁开发的？"))
    answer = events[-1].answer
    assert not answer.refused and len(generator.calls) == 1
    user = generator.calls[0][1]["content"]
    assert "<passage id=1" in user and "<passage id=2" not in user
    assert not any(isinstance(e, RetryEvent) for e in events) and "first_pass" not in answer.timings


def test_a_first_pass_refusal_is_never_shown_and_the_wider_prompt_starts_with_the_first():
    refusal = Settings().answer.refusal_zh
    pipeline, generator = _staged([refusal + "资料里只说了它支持的语言。", "长城全长约两万一千公里[3]。"])
    events = list(pipeline.stream("长城全长多少公里？"))
    answer = events[-1].answer
    assert not answer.refused and answer.text == "长城全长约两万一千公里[3]。"
    assert not any(isinstance(e, RetryEvent) for e in events)  # nothing to withdraw
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == answer.text
    first, wide = (call[1]["content"] for call in generator.calls)
    assert "<passage id=3" in wide and first[:first.index("</passages>")] in wide  # the shared prefix
    assert answer.timings["first_pass"] > 0


def test_a_first_pass_answer_that_fails_the_checks_is_withdrawn_for_the_wider_one():
    # The first answer gives a year the question does not ask about: the evidence check refuses it.
    pipeline, generator = _staged(["通义千问模型由阿里云在2019年开发[1]。", "长城全长约两万一千公里[3]。"])
    events = list(pipeline.stream("长城全长多少公里？"))
    retry = [i for i, e in enumerate(events) if isinstance(e, RetryEvent)]
    assert len(retry) == 1 and len(generator.calls) == 2
    assert not events[-1].answer.refused and events[-1].answer.text == "长城全长约两万一千公里[3]。"


def test_a_refusal_after_widening_is_retried_as_before():
    refusal = Settings().answer.refusal_zh
    pipeline, generator = _staged([refusal, refusal, "长城全长约两万一千公里[3]。"])
    answer = pipeline.answer("长城全长多少公里？")
    assert not answer.refused and len(generator.calls) == 3
    assert refusal not in generator.calls[2][0]["content"]  # the retry without the refusal option, widened
    assert "<passage id=3" in generator.calls[2][1]["content"]


def test_a_name_missing_from_the_first_pass_goes_straight_to_the_wider_one():
    pipeline, generator = _staged(["长城东起山海关[3]。"])
    pipeline.retriever.passages[2] = scored("长城（Great Wall）全长约两万一千公里，" + "东起山海关，西至嘉峪关。" * 11,
                                            3, dense=0.8)
    assert not pipeline.answer("Great Wall 东起哪里？").refused
    assert len(generator.calls) == 1 and "<passage id=3" in generator.calls[0][1]["content"]


def test_no_first_pass_when_it_is_off_or_would_hold_every_passage():
    for overrides in ({"first_pass_budget_tokens": 0}, {"first_pass_budget_tokens": 5000}):
        pipeline, generator = _staged([Settings().answer.refusal_zh, "长城全长约两万一千公里[3]。"], **overrides)
        pipeline.answer("长城全长多少公里？")
        assert all("<passage id=3" in call[1]["content"] for call in generator.calls)


class _Verifying(ScriptedGenerator):
    """A scripted generator whose yes/no verification always answers with the same p(yes)."""

    def __init__(self, answers: list[str], p_yes: float) -> None:
        super().__init__(answers)
        self.p_yes = p_yes

    def yes_probability(self, messages, yes, no) -> float:
        return self.p_yes


def test_a_first_pass_answer_is_held_to_the_stricter_verification_and_widens_below_it():
    answers = ["通义千问模型由阿里云开发[1]。", "通义千问模型由阿里云开发[1]。"]
    for p_yes, calls in ((0.95, 1), (0.8, 2), (0.5, 2)):
        settings = Settings()
        for key, value in {"first_pass_budget_tokens": 200, "context_budget_tokens": 1000}.items():
            setattr(settings.answer, key, value)
        generator = _Verifying(answers, p_yes)
        pipeline = assemble_pipeline(FakeRetriever(list(STAGED)), generator, FakeEmbedder(dimension=256), settings)
        answer = pipeline.answer("通义千问是谁开发的？")
        assert len(generator.calls) == calls, p_yes
        # 0.8 fails the first pass's 0.9 but passes the wide pass's 0.7; 0.5 fails both.
        assert answer.refused == (p_yes < settings.answer.min_verification_yes_zh), p_yes
