"""The whole answer path on real components: real ingest + embedder + hybrid retriever + packaged LLM
(build_pipeline), and the ask CLI."""

from __future__ import annotations

import json

import pytest
from app_fakes import page_env

from app.answer.answer_pipeline import DoneEvent, PassagesEvent, TokenEvent
from app.cli import ask

pytestmark = pytest.mark.slow


def test_chinese_question_is_answered_from_the_knowledge_base_with_a_citation(real_pipeline):
    events = list(real_pipeline.stream("星河数据库默认监听哪个端口？"))
    assert isinstance(events[0], PassagesEvent) and events[0].passages
    assert any(isinstance(e, TokenEvent) for e in events)
    answer = events[-1].answer
    assert isinstance(events[-1], DoneEvent)
    assert not answer.refused, answer.text
    assert "7341" in answer.text
    assert answer.citations and "7341" in answer.citations[0].quoted_text
    assert answer.citations[0].passage.chunk.source.endswith("星河数据库手册.md")


def test_question_the_documents_cannot_answer_is_refused(real_pipeline, real_app_settings):
    answer = real_pipeline.answer("Who won the 1998 football World Cup?")
    assert answer.refused and answer.text == real_app_settings.answer.refusal_en


def _configure_like(settings, monkeypatch, tmp_path) -> None:
    """Make the CLI's own load_settings() reproduce ``settings`` (environment only, as a user would)."""
    monkeypatch.chdir(tmp_path)
    for name, value in page_env(settings).items():
        monkeypatch.setenv(name, value)


def test_ask_cli_streams_then_lists_sources(real_app_settings, real_pipeline, monkeypatch, capsys, tmp_path):
    _configure_like(real_app_settings, monkeypatch, tmp_path)
    assert ask.main(["How many times does Aurora retry a failed job?", "--max-new-tokens", "40"]) == 0
    out = capsys.readouterr().out
    assert "three" in out.lower() or "3" in out
    assert "Sources:" in out and "aurora-notes.txt" in out


def test_ask_cli_json_and_question_limit(real_app_settings, real_pipeline, monkeypatch, capsys, tmp_path):
    _configure_like(real_app_settings, monkeypatch, tmp_path)
    assert ask.main(["星河数据库多久备份一次？", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["question"] == "星河数据库多久备份一次？" and "citations" in payload
    too_long = "问" * (real_app_settings.limits.max_question_chars + 1)
    assert ask.main([too_long]) == 2
    assert "max_question_chars" in capsys.readouterr().err
