"""The ask CLI's output and exit codes, over the real pipeline logic with fake retrieval and generation."""

from __future__ import annotations

import json

from answer_fakes import FakeRetriever, ScriptedGenerator, scored

from app.answer.answer_pipeline import AnswerPipeline
from app.cli import ask
from app.config import Settings
from app.wiring import assemble_pipeline
from ingest.testing.fake_embedder import FakeEmbedder


def _use_fake_pipeline(monkeypatch, answer: str, seen: list) -> None:
    def build(settings: Settings, with_reranker: bool | None = None) -> AnswerPipeline:
        seen.append(settings)
        passages = [scored("星河数据库默认监听 7341 端口。", 1, source="docs/星河.md", page=3, heading=["端口"])]
        return assemble_pipeline(FakeRetriever(passages), ScriptedGenerator(answer),
                                 FakeEmbedder(dimension=256), settings)

    monkeypatch.setattr("app.cli.base_choice.load_settings", lambda config=None, **overrides: Settings(**overrides))
    monkeypatch.setattr(ask, "build_pipeline", build)


def test_streams_answer_then_numbered_sources_and_flags(monkeypatch, capsys):
    seen: list = []
    _use_fake_pipeline(monkeypatch, "默认端口是 7341[1]。月亮是奶酪做的[1]。", seen)
    assert ask.main(["默认端口是多少？", "--temperature", "0.7", "--max-new-tokens", "99", "--kb", "/x/kb"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("默认端口是 7341[1]。")
    assert "[1] docs/星河.md, p.3 — 端口\n    星河数据库默认监听 7341 端口。" in out
    assert "! weakly supported" in out and "月亮是奶酪做的" in out
    settings = seen[0]
    assert (settings.generation.temperature, settings.generation.max_new_tokens) == (0.7, 99)
    assert str(settings.kb_path) == "/x/kb"


def test_json_output_is_the_whole_answer(monkeypatch, capsys):
    _use_fake_pipeline(monkeypatch, "默认端口是 7341[1]。", [])
    assert ask.main(["默认端口是多少？", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["refused"] is False and payload["citations"][0]["number"] == 1
    assert payload["citations"][0]["quoted_text"] == "星河数据库默认监听 7341 端口。"


def test_bad_question_exits_2_with_a_clear_message(monkeypatch, capsys):
    _use_fake_pipeline(monkeypatch, "x", [])
    assert ask.main(["   "]) == 2
    assert "question rejected: the question is empty" in capsys.readouterr().err
