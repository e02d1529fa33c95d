"""A near miss on real components: real ingest + embedder + retrieval + the packaged LLM over a small base whose
passages are on topic but give another year's figure. The answer for the year they give stands; the year they
do not give is refused, with a reason naming it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

# Written for this test: an invented airport, two years' figures, none for 2021.
DOCS = {
    "松湖机场年报.md": ("# 松湖机场运营概况\n\n松湖机场位于临江市东郊，共有两条跑道。2019年，松湖机场旅客吞吐量为1820万人次。"
                   "2020年受疫情影响，松湖机场旅客吞吐量下降至1130万人次。\n"),
    "松湖机场扩建.md": ("# 松湖机场扩建工程\n\n松湖机场三期扩建工程于2018年开工，新建一座航站楼和一条跑道。"
                    "扩建完成后，机场设计年旅客吞吐量将达到4000万人次。\n"),
}


@pytest.fixture(scope="module")
def near_miss_pipeline(tmp_path_factory, packaged_models_dir, real_embedder_settings, real_embedder,
                       packaged_gguf_path):
    from app.config import Settings
    from app.wiring import assemble_pipeline, build_generator, build_retriever, run_ingest
    from ingest.pipeline.ingest_pipeline import IngestOptions

    home = tmp_path_factory.mktemp("near_miss_home")
    docs = home / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = Settings(data_dir=home, model_cache_dir=packaged_models_dir, embedder=real_embedder_settings)
    settings.kb_dir = home / "kb"
    settings.generation.n_threads = 2
    settings.generation.max_new_tokens = 64
    run_ingest(settings, [docs], IngestOptions(), embedder_factory=lambda: real_embedder)
    return assemble_pipeline(build_retriever(settings, real_embedder), build_generator(settings), real_embedder,
                             settings)


def test_the_year_the_passages_give_is_answered_with_its_own_figure_never_the_neighbouring_years(
        near_miss_pipeline):
    # The packaged model, greedy, answers this with 2019's figure ("1820万人次 [1]", the sentence next to
    # 2020's): the evidence check must turn that into a refusal naming the year; a right answer must hold 1130.
    answer = near_miss_pipeline.answer("2020年松湖机场的旅客吞吐量是多少？")
    assert "1820" not in answer.text
    if answer.refused:
        assert "2020" in answer.refusal_reason or "no answer" in answer.refusal_reason, answer.refusal_reason
    else:
        assert "1130" in answer.text


def test_a_year_the_passages_do_not_give_is_refused_naming_it(near_miss_pipeline):
    answer = near_miss_pipeline.answer("2021年松湖机场的旅客吞吐量是多少？")
    assert answer.refused, answer.text
    assert answer.passages
    # Refused by the model itself or by the evidence check, which names the year it lacks.
    assert "2021" in answer.refusal_reason or "no answer" in answer.refusal_reason
