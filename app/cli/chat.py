"""``python -m app.cli.chat``: an interactive conversation with the documents in the terminal.

Each question is answered in the context of the conversation so far (a follow-up such as "那其中有多少道题？" is
rewritten into a standalone question before retrieval). Line editing and history come from GNU readline (stdlib);
``/new`` starts a new conversation, ``/sources`` shows the full sources of the last answer, ``/help`` lists the
commands, Ctrl-C stops the answer being written, Ctrl-D (or ``/quit``) quits."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from app.answer.answer_pipeline import (
    AnswerPipeline,
    DoneEvent,
    QuestionError,
    RetryEvent,
    TokenEvent,
)
from app.answer.conversation import Conversation
from app.cli.base_choice import add_base_arguments, settings_from_args
from app.config import ConfigError
from app.wiring import build_pipeline, kb_notices, quiet_model_libraries
from ingest.visible_text import visible
from prompts.records import Answer

PROMPT = "docqa> "
HELP = "/new: new conversation · /sources: sources of the last answer · /quit or Ctrl-D: quit"
_EXCERPT_CHARS = 240


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.cli.chat", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_base_arguments(p)
    p.add_argument("--json", action="store_true", help="print each Answer as one JSON line instead of streaming")
    return p


def _line_editing() -> None:
    """Arrow keys and history for input(); absent readline (e.g. Windows without pyreadline) input still works."""
    try:
        import readline  # noqa: F401 - importing it is what switches line editing on for input()
    except ImportError:
        pass


class ChatSession:
    """One terminal conversation: the turns so far, and the last answer for /sources."""

    def __init__(self, pipeline: AnswerPipeline, write: Callable[[str], None], as_json: bool = False) -> None:
        self.conversation = Conversation(pipeline)
        self.write = write
        self.as_json = as_json
        self.last: Answer | None = None

    def handle(self, line: str) -> bool:
        """Act on one input line; False to quit."""
        text = line.strip()
        if not text:
            return True
        if text in ("/quit", "/exit"):
            return False
        if text == "/new":
            self.conversation.reset()
            self.last = None
            self.write("(new conversation)\n")
        elif text == "/sources":
            self.write(self._sources())
        elif text in ("/help", "/?"):
            self.write(HELP + "\n")
        elif text.startswith("/") and " " not in text:
            self.write(f"unknown command {text}; {HELP}\n")
        else:
            self.ask(text)
        return True

    def ask(self, question: str) -> None:
        try:
            answer = self._answer(question)
        except QuestionError as exc:
            self.write(f"question rejected: {exc}\n")
            return
        except KeyboardInterrupt:
            self.write("\n(stopped)\n")
            return
        self.last = answer

    def _answer(self, question: str) -> Answer:
        if self.as_json:
            answer = self.conversation.ask(question)
            self.write(json.dumps(dataclasses.asdict(answer), ensure_ascii=False, default=str) + "\n")
            return answer
        streamed: list[str] = []
        for event in self.conversation.stream(question):
            if isinstance(event, TokenEvent):
                streamed.append(event.text)
                self.write(event.text)
            elif isinstance(event, RetryEvent):
                streamed.clear()
                self.write(f"\n({event.reason})\n")
            elif isinstance(event, DoneEvent):
                answer = event.answer
                if answer.text != "".join(streamed).strip():
                    self.write(f"\n=> {answer.text}")
                self.write("\n" + self._footer(answer))
                return answer
        raise RuntimeError("the answer stream ended without an answer")

    @staticmethod
    def _footer(answer: Answer) -> str:
        lines = []
        if answer.standalone_question and answer.standalone_question != answer.question:
            lines.append(f"(searched for: {answer.standalone_question})")
        if answer.refused:
            lines.append(f"(refused: {answer.refusal_reason})")
        if answer.citations:
            lines.append("(sources: " + "; ".join(f"[{c.number}] {visible(Path(c.passage.chunk.source).name)}"
                                                 for c in answer.citations) + " · /sources for the passages)")
        return "".join(line + "\n" for line in lines)

    def _sources(self) -> str:
        if self.last is None:
            return "(no answer yet)\n"
        shown = self.last.citations or []
        if not shown:
            return "(the last answer cites no passage)\n"
        out = []
        for c in shown:
            chunk = c.passage.chunk
            where = visible(chunk.source) + (f", {chunk.page_label}" if chunk.page_label else "")
            heading = f" — {visible(chunk.heading)}" if chunk.heading_path else ""
            flat = " ".join(c.quoted_text.split())
            excerpt = flat if len(flat) <= _EXCERPT_CHARS else flat[:_EXCERPT_CHARS] + "…"
            out.append(f"[{c.number}] {where}{heading}\n    {excerpt}\n")
        return "".join(out)


def _write(text: str) -> None:
    # Answers, passages and names come from documents and the model: control and bidi characters shown escaped
    # (file names are escaped where they are put in a line, newlines included).
    sys.stdout.write(visible(text, keep_lines=True))
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    quiet_model_libraries()
    args = _parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        pipeline = build_pipeline(settings)
    except ConfigError as exc:  # a check named by its module path that cannot be built
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        print(f"error: {type(exc).__name__}: {visible(str(exc))}", file=sys.stderr)
        return 1
    for notice in kb_notices(pipeline.retriever):
        print(f"note: {visible(notice)}", file=sys.stderr)
    _line_editing()
    session = ChatSession(pipeline, _write, args.json)
    if not args.json:
        _write(f"docqa chat — ask about your documents. {HELP}\n")
    while True:
        try:
            line = input(PROMPT if sys.stdin.isatty() else "")
        except EOFError:
            _write("\n")
            return 0
        except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line, as in a shell
            _write("\n")
            continue
        try:
            if not session.handle(line):
                return 0
        except Exception as exc:  # noqa: BLE001 - the conversation goes on after a failed answer
            _write(f"error: {type(exc).__name__}: {exc}\n")


if __name__ == "__main__":
    raise SystemExit(main())
