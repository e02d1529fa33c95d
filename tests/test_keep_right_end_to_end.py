"""Issue #25 on the packaged LLM, through the answer pipeline: the claim check's derivation judged by the model's
real yes/no verdicts, and the repair before refusing with the model writing the repaired answer.

The first drafts are given, not generated: they are the defective drafts the issue reports the packaged model
writing ("37 [1]" for the questions *with* answers; one director of seven), so the path they take is certain;
everything after them — the verdicts, the derivation, the repair prompt, the model's repaired answer and the checks
on it — is the packaged model's. The whole pipeline over generated drafts is measured in
bench/RESULTS_KEEP_RIGHT.md."""

from __future__ import annotations

import pytest
from answer_fakes import FakeRetriever, scored

pytestmark = pytest.mark.slow

# The sample corpus's own sentence (data/sample/rag_notes.md), which the README's chat example is about.
SAMPLE = ("评估要分开看检索和生成。我们的“青鸾”内部评测集共有 412 道题，其中 37 道是资料中没有答案的“拒答题”，"
          "专门用来检验系统会不会老实说不知道。")
# Written for this test (made-up company and people).
BOARD = "恒远科技第五届董事会由7名董事组成，分别为张立、王芳、李建国、赵敏、陈涛、刘洋和孙悦。"
NAMES = ["张立", "王芳", "李建国", "赵敏", "陈涛", "刘洋", "孙悦"]


class FirstDraftGiven:
    """The packaged model, except that its first answer is ``draft``: every later generation and every yes/no
    verdict is the model's own."""

    def __init__(self, model, draft: str) -> None:
        self.model, self.draft, self.prompts = model, draft, []

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def stream(self, messages, settings):
        self.prompts.append(messages)
        if len(self.prompts) == 1:
            yield self.draft
            return
        yield from self.model.stream(messages, settings)


@pytest.fixture(scope="module")
def llm(packaged_models_dir, packaged_gguf_path):
    from app.config import Settings
    from app.wiring import build_generator

    settings = Settings(model_cache_dir=packaged_models_dir)
    settings.generation.max_new_tokens = 96
    return build_generator(settings), settings


def _pipeline(llm, draft: str, passage: str, real_embedder, **answer):
    from app.wiring import assemble_pipeline

    model, settings = llm
    settings = settings.model_copy(update={"answer": settings.answer.replace(**answer)})
    generator = FirstDraftGiven(model, draft)
    return assemble_pipeline(FakeRetriever([scored(passage, 1)]), generator, real_embedder, settings), generator


def test_the_readme_follow_up_is_answered_375_by_the_cited_figures(llm, real_embedder):
    # The real model's verdict on the answer itself runs only when asked for (claim_verdict); the derivation always.
    for verdict in (False, True):
        pipeline, _ = _pipeline(llm, "37 [1]", SAMPLE, real_embedder, claim_verdict=verdict)
        follow_up = pipeline.answer("青鸾评测集中有多少道题是有答案的？")
        assert not follow_up.refused, follow_up.refusal_reason
        assert follow_up.text.startswith("375") and "412 − 37 = 375" in follow_up.text
        assert follow_up.signals["claim.derived"] == 1.0
        assert ("claim.p_yes" in follow_up.signals) is verdict
        assert not verdict or follow_up.signals["claim.p_yes"] > 0
    pipeline, _ = _pipeline(llm, "37 [1]", SAMPLE, real_embedder)
    first = pipeline.answer("青鸾评测集里有多少道拒答题？")
    assert not first.refused and first.text.startswith("37道"), first.refusal_reason


def test_a_list_shorter_than_the_cited_one_is_repaired_by_the_model_and_checked_again(llm, real_embedder):
    # "always": the one-name draft passes the checks; the default repairs only a draft about to be refused.
    pipeline, generator = _pipeline(llm, "张立 [1]", BOARD, real_embedder, repair_defects="always")
    answer = pipeline.answer("恒远科技第五届董事会有哪些董事？")
    assert len(generator.prompts) == 2 and "7项" in generator.prompts[1][-1]["content"]
    assert answer.signals["repair.tried"] == 1.0
    assert not answer.refused, answer.refusal_reason
    # The model's repaired answer, checked the same way, replaced the one-name draft.
    assert answer.signals["repair.kept"] == 1.0, answer.text
    assert sum(n in answer.text for n in NAMES) > 1, answer.text


# Written for this test (a made-up observatory).
OBSERVATORY = ("The Harrow Ridge Observatory opened in 1931 on a hill east of the town. Its main telescope, a "
               "1.2-metre reflector, was built by the Calder Optical Company and first used in the winter of 1933.")


@pytest.mark.parametrize(("draft", "question", "expected"), [
    ("[1]", "Who built the main telescope of the Harrow Ridge Observatory?", "Calder Optical Company"),
    ("The year it opened is [1].", "When did the Harrow Ridge Observatory open?", "1931"),
])
def test_a_marker_only_draft_becomes_the_words_the_model_copies_out_of_the_passage(llm, real_embedder, draft,
                                                                                   question, expected):
    pipeline, generator = _pipeline(llm, draft, OBSERVATORY, real_embedder)
    answer = pipeline.answer(question)
    assert not answer.refused, answer.refusal_reason
    assert answer.signals["marker_quote.span"] == 1.0 and answer.text.endswith("[1]")
    span = answer.text.removesuffix("[1]").strip()
    assert expected in span and span in OBSERVATORY and len(span) < len(OBSERVATORY) / 2, answer.text
