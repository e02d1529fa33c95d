"""The one live-base holder the chat page and the server share: the pipeline over the live generation, reopened
with the same models when a new generation is committed; a snapshot taken before a commit stays as it was."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from app_fakes import ingest_with_hash_embedder, write_corpus

from app.answer.live_pipeline import LivePipeline
from app.config import Settings
from app.wiring import build_pipeline, knowledge_store
from ingest.store.kb_layout import read_current
from ingest.store.knowledge_base import KnowledgeBaseMissingError
from ingest.testing.fake_embedder import FakeEmbedder


def _holder(settings: Settings, opened: list) -> LivePipeline:
    embedder = FakeEmbedder()

    def build(previous):
        opened.append(previous)
        # The models of the previous pipeline go on serving the new generation.
        generator = previous.generator if previous is not None else object()
        return build_pipeline(settings, generator=generator, embedder=embedder)

    return LivePipeline(knowledge_store(settings), build)


def test_a_new_generation_is_opened_once_with_the_models_of_the_one_before(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    opened: list = []
    live = _holder(settings, opened)
    with pytest.raises(KnowledgeBaseMissingError, match="no knowledge base here yet"):
        live.snapshot()
    assert opened == [] and not live.is_current()

    docs = write_corpus(tmp_path / "docs")
    ingest_with_hash_embedder(settings, [docs])
    first = live.snapshot()
    assert first.generation == read_current(settings.kb_path) and opened == [None]
    assert live.snapshot() is first and live.is_current() and len(opened) == 1  # not reopened

    (docs / "new.md").write_text("# 新文档\n\n晨曦服务每小时同步一次。\n", encoding="utf-8")
    ingest_with_hash_embedder(settings, [docs])
    assert not live.is_current()
    second = live.snapshot()
    assert second.generation != first.generation and opened == [None, first.pipeline]
    assert second.pipeline.generator is first.pipeline.generator
    # A question that started on the first snapshot still reads its own generation; the new one holds the new file.
    question = "晨曦服务多久同步一次？"
    assert not any("晨曦" in p.text for p in first.pipeline.retriever.retrieve(question).passages)
    assert any("晨曦" in p.text for p in second.pipeline.retriever.retrieve(question).passages)


def test_concurrent_callers_open_a_generation_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    opened: list = []
    live = _holder(settings, opened)
    seen: list = []
    threads = [threading.Thread(target=lambda: seen.append(live.snapshot())) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(opened) == 1 and len({id(s) for s in seen}) == 1
