"""The real thing: ``python -m app.server`` on 127.0.0.1 with the packaged embedder and LLM over a small real
knowledge base, called with the official ``openai`` client — streamed and not, an unanswerable question refused, a
follow-up — and the same answer as the in-process pipeline (greedy decoding)."""

from __future__ import annotations

import pytest
from app_fakes import page_env
from app.server.process_harness import ServerProcess, free_port

openai = pytest.importorskip("openai")

pytestmark = pytest.mark.slow
QUESTION = "星河数据库默认监听哪个端口？"


@pytest.fixture(scope="module")
def real_server(real_app_settings, tmp_path_factory):
    port = free_port()
    server = ServerProcess(["-m", "app.server", "--port", str(port)], page_env(real_app_settings), port,
                           tmp_path_factory.mktemp("real_server") / "server.log")
    try:
        server.wait_ready(timeout=600)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(real_server):
    return openai.OpenAI(base_url=real_server.base_url + "/v1", api_key="not-needed-on-loopback", timeout=600,
                         max_retries=0)


def _docqa(obj) -> dict:
    return obj.model_extra["docqa"]


def test_the_openai_client_gets_a_cited_answer_the_same_as_the_pipeline(client, real_pipeline):
    response = client.chat.completions.create(model="docqa", messages=[{"role": "user", "content": QUESTION}])
    ext = _docqa(response)
    assert not ext["refused"], ext["refusal_reason"]
    assert "7341" in ext["answer"] and "[" in ext["answer"]
    assert ext["sources"] and ext["sources"][0]["file"].endswith("星河数据库手册.md")
    assert response.choices[0].message.content.startswith(ext["answer"])
    assert "来源:" in response.choices[0].message.content
    # Greedy decoding: the server answers exactly what the pipeline answers in-process.
    assert ext["answer"] == real_pipeline.answer(QUESTION).text


def test_the_openai_client_streams_the_answer(client):
    stream = client.chat.completions.create(model="docqa:kb", stream=True,
                                            messages=[{"role": "user", "content": QUESTION}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(final) == 1 and len(chunks) > 5
    ext = _docqa(final[0])
    assert not ext["refused"] and "7341" in text and ext["answer"] in text


def test_an_unanswerable_question_is_refused(client, real_app_settings):
    response = client.chat.completions.create(model="docqa",
                                              messages=[{"role": "user", "content": "火星大气的主要成分是什么？"}])
    ext = _docqa(response)
    assert ext["refused"] and ext["refusal_reason"] and not ext["sources"]
    assert response.choices[0].message.content.startswith(real_app_settings.answer.refusal_zh)


def test_a_follow_up_question_is_answered_in_its_conversation(client):
    messages = [{"role": "user", "content": QUESTION}]
    first = client.chat.completions.create(model="docqa", messages=messages)
    messages += [{"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "它每天几点自动备份？"}]
    response = client.chat.completions.create(model="docqa", messages=messages)
    ext = _docqa(response)
    assert not ext["refused"], ext["refusal_reason"]
    assert any(s in ext["answer"] for s in ("两点", "2点", "2:00", "凌晨")), ext["answer"]


def test_a_wrong_model_and_bad_input_raise_the_clients_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="docqa", messages=[])
    vectors = client.embeddings.create(model="docqa", input=["星河数据库"]).data
    assert len(vectors[0].embedding) == 384
