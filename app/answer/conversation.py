"""The Python API for a conversation with the documents: each question is answered in the context of the turns
before it (a follow-up is rewritten into a standalone question before retrieval).

    from app.answer.conversation import Conversation
    from app.config import load_settings
    from app.wiring import build_pipeline

    chat = Conversation(build_pipeline(load_settings()))
    chat.ask("青鸾评测集里有多少道拒答题？")
    answer = chat.ask("那其中有多少道题是有答案的？")   # answer.standalone_question: what was searched for
    chat.reset()                                        # a new conversation
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from app.answer.answer_pipeline import AnswerEvent, AnswerPipeline, AskOptions, DoneEvent
from prompts.conversation import Turn
from prompts.records import Answer


def turn_of(answer: Answer) -> Turn:
    """The turn an answer adds to the conversation: the message as asked, the answer, the passages it cited."""
    return Turn(answer.question, answer.text, [c.passage for c in answer.citations])


class Conversation:
    """The turns so far (oldest first) and the pipeline that answers the next one."""

    def __init__(self, pipeline: AnswerPipeline, history: list[Turn] | None = None) -> None:
        self.pipeline = pipeline
        self.history: list[Turn] = list(history or [])

    def stream(self, question: str, options: AskOptions | None = None) -> Iterator[AnswerEvent]:
        """The pipeline's events for ``question`` asked after the conversation; the turn is kept once done."""
        for event in self.pipeline.stream(question, replace(options or AskOptions(), history=list(self.history))):
            if isinstance(event, DoneEvent):
                self.history.append(turn_of(event.answer))
            yield event

    def ask(self, question: str, options: AskOptions | None = None) -> Answer:
        for event in self.stream(question, options):
            if isinstance(event, DoneEvent):
                return event.answer
        raise RuntimeError("the answer stream ended without an answer")

    def reset(self) -> None:
        self.history = []
