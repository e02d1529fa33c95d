"""Helpers for the app tests: a fake pipeline (the real AnswerPipeline logic over a fixed retriever and a scripted
generator that records its decoding settings), a tiny corpus, and the environment that points the page at a
test home."""

from __future__ import annotations

import re
from pathlib import Path

from answer_fakes import FakeRetriever, ScriptedGenerator, scored

from app.answer.answer_pipeline import AnswerPipeline
from app.config import Settings
from app.wiring import assemble_pipeline
from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
from ingest.pipeline.ingest_report import IngestReport
from ingest.testing.fake_embedder import FakeEmbedder

HOSTILE_PASSAGE = ("检索增强生成（RAG）先检索相关段落，再让模型根据这些段落作答。"
                   "<script>window.__pwned=1</script> <img src=http://127.0.0.1:9/x.png onerror=\"window.__pwned=2\"> "
                   "![x](http://127.0.0.1:9/y.png) [link](javascript:alert(1)) www.example.com")
ANSWER = "RAG 先检索相关段落，再让模型根据这些段落作答 [1]。"


class RecordingGenerator(ScriptedGenerator):
    """A scripted generator that also records the GenerationSettings of each call."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.settings_seen: list = []

    def stream(self, messages, settings):
        self.settings_seen.append(settings)
        yield from super().stream(messages, settings)


class CitingGenerator(RecordingGenerator):
    """Answers ``template`` citing whichever prompt passage holds ``keyword``: robust to retrieval order."""

    def __init__(self, template: str, keyword: str) -> None:
        super().__init__(template)
        self.template, self.keyword = template, keyword

    def stream(self, messages, settings):
        prompt = "\n".join(m["content"] for m in messages)
        number = next((n for n, body in re.findall(r"<passage id=(\d+)[^>]*>(.*?)</passage>", prompt, re.S)
                       if self.keyword in body), "9")
        self.answer = self.template.format(n=number)
        self.answers = [self.answer]
        yield from super().stream(messages, settings)


def fake_passages(dense: float = 0.9) -> list:
    return [
        scored(HOSTILE_PASSAGE, 1, dense=dense, source="docs/rag<b>.md", page=2, heading=["第一章", "RAG"]),
        scored("BM25 是一种关键词检索的打分方法。", 2, dense=dense - 0.1, source="docs/bm25.md"),
    ]


def fake_pipeline(settings: Settings, answer: str = ANSWER, dense: float = 0.9) -> AnswerPipeline:
    return assemble_pipeline(FakeRetriever(fake_passages(dense)), RecordingGenerator(answer),
                             FakeEmbedder(dimension=256), settings)


# A tiny corpus written for these tests (one Chinese, one English document).
SMALL_CORPUS = {
    "星河数据库手册.md": "# 星河数据库\n\n## 端口\n\n星河数据库默认监听 7341 端口，管理员可以在配置文件里修改。\n\n"
                       "## 备份\n\n星河数据库每天凌晨两点自动备份，备份保留十四天。\n",
    "aurora-notes.txt": "Aurora is a small scheduling service. It retries a failed job three times, "
                        "waiting thirty seconds between attempts.\n",
}


def write_corpus(folder: Path, files: dict[str, str] = SMALL_CORPUS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def ingest_with_hash_embedder(settings: Settings, paths: list[Path]) -> IngestReport:
    """The real ingest with a fast stand-in embedder: a real knowledge base on disk in well under a second."""
    return run_ingest(settings, paths, IngestOptions(), embedder_factory=FakeEmbedder)


def page_env(settings: Settings) -> dict[str, str]:
    """Environment that makes ``load_settings()`` in the page reproduce ``settings`` (the page's only input)."""
    return {
        "DOCQA_HOME": str(settings.data_dir),
        "DOCQA_MODEL_CACHE_DIR": str(settings.models_path),
        "DOCQA_EMBEDDER__NUM_THREADS": str(settings.embedder.num_threads),
        "DOCQA_GENERATION__N_THREADS": str(settings.generation.n_threads),
        "DOCQA_GENERATION__MAX_NEW_TOKENS": str(settings.generation.max_new_tokens),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
