"""Starts the real ``app.cli.chat`` terminal loop with the fake pipeline of tests/test_chat_terminal.py (real
AnswerPipeline logic, fixed passages, scripted LLM), so a pseudo-terminal can drive it without loading models."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from answer_fakes import FakeRetriever, ScriptedGenerator, scored  # noqa: E402

import app.cli.chat as chat  # noqa: E402
from app.answer.answer_pipeline import AnswerPipeline  # noqa: E402
from app.config import Settings  # noqa: E402
from app.wiring import assemble_pipeline  # noqa: E402
from ingest.testing.fake_embedder import FakeEmbedder  # noqa: E402

PASSAGE = "青鸾评测集共有412道题，其中37道是拒答题，其余375道有答案。"
# One reply per LLM call, in order: answer 1, answer 2 (the follow-up's "其中" is resolved from the first question's
# subject without the model), then answer 3 (after /new).
REPLIES = ["青鸾评测集有 37 道拒答题 [1]。", "其余375道有答案 [1]。", "其余375道有答案 [1]。"]


def build(settings: Settings, with_reranker: bool | None = None) -> AnswerPipeline:
    retriever = FakeRetriever([scored(PASSAGE, 1, source="docs/青鸾评测集.md")])
    pipeline = assemble_pipeline(retriever, ScriptedGenerator(REPLIES), FakeEmbedder(dimension=256), settings)
    chat.SEEN_RETRIEVER = retriever  # type: ignore[attr-defined]
    return pipeline


def _print_queries() -> None:
    print("RETRIEVED:", " | ".join(chat.SEEN_RETRIEVER.calls))  # type: ignore[attr-defined]


if __name__ == "__main__":
    chat.build_pipeline = build
    chat.load_settings = lambda config=None, **overrides: Settings(**overrides)
    code = chat.main(sys.argv[1:])
    _print_queries()
    raise SystemExit(code)
