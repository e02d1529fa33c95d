"""``python -m app.cli.ask "问题"``: stream a grounded answer to the terminal, then list its sources and flags."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from app.answer.answer_pipeline import (
    AskOptions,
    DoneEvent,
    PassagesEvent,
    QuestionError,
    RetryEvent,
    TokenEvent,
)
from app.cli.base_choice import add_base_arguments, settings_from_args
from app.config import ConfigError
from app.wiring import build_pipeline, kb_notices, quiet_model_libraries
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.visible_text import visible
from prompts.records import Answer
from retrieval.question_check import validate_question

_EXCERPT_CHARS = 160


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.cli.ask", description=__doc__)
    p.add_argument("question", help="the question (Chinese or English)")
    add_base_arguments(p)
    p.add_argument("--json", action="store_true", help="print the whole Answer as JSON instead of streaming")
    p.add_argument("--backend", choices=["llama_cpp", "transformers", "openai"])
    p.add_argument("--model", help="GGUF path, HF model path/name, or server model name")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--sampling-top-k", "--top-k", type=int, dest="sampling_top_k",
                   help="sampling top-k of the LLM (generation.sampling_top_k); passages: --passages")
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--no-repeat-ngram-size", type=int)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--passages", "--top-k-passages", type=int, dest="passages",
                   help="passages to retrieve (RetrievalSettings.top_k)")
    switch = p.add_mutually_exclusive_group()
    switch.add_argument("--rerank", action="store_true", help="rerank the candidates (default: retrieval.rerank)")
    switch.add_argument("--no-rerank", action="store_true", help="skip the reranker")
    return p


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return visible(flat if len(flat) <= _EXCERPT_CHARS else flat[:_EXCERPT_CHARS] + "…")


def _say(text: str) -> None:
    """Write text that comes from documents or the model: control and bidi characters shown escaped."""
    sys.stdout.write(visible(text, keep_lines=True))
    sys.stdout.flush()


def _print_sources(answer: Answer) -> None:
    if answer.refused:
        _say(f"\n(refused: {answer.refusal_reason})\n")
    if answer.citations:
        _say("\nSources:\n")
        for c in answer.citations:
            chunk = c.passage.chunk
            where = visible(chunk.source) + (f", {chunk.page_label}" if chunk.page_label else "")
            heading = f" — {visible(chunk.heading)}" if chunk.heading_path else ""
            _say(f"[{c.number}] {where}{heading}\n    {_excerpt(c.quoted_text)}\n")
    flagged = [c for c in answer.checks if not c.supported]
    for check in flagged:
        _say(f"! weakly supported ({check.support_score:.2f}): {check.sentence}\n")
    t = answer.timings
    figures = [f"{k}={t[k]:.2f}s" for k in ("retrieve", "first_token", "generate") if k in t]
    if "tokens_per_s" in t:
        figures.append(f"{t['tokens_per_s']:.1f} tokens/s")
    _say("(" + ", ".join(figures) + ")\n")


def main(argv: list[str] | None = None) -> int:
    quiet_model_libraries()
    args = _parser().parse_args(argv)
    flags = ("backend", "model", "temperature", "top_p", "sampling_top_k", "repetition_penalty",
             "no_repeat_ngram_size", "max_new_tokens")
    generation = {flag: getattr(args, flag) for flag in flags if getattr(args, flag) is not None}
    try:
        settings = settings_from_args(args, generation=generation)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    rerank = True if args.rerank else False if args.no_rerank else None
    options = AskOptions(top_k=args.passages, rerank=rerank)
    try:
        validate_question(args.question, settings.limits)  # the shared bound, before any model loads
        pipeline = build_pipeline(settings, with_reranker=rerank)
        for notice in kb_notices(pipeline.retriever):
            print(f"note: {visible(notice)}", file=sys.stderr)
        if args.json:
            answer = pipeline.answer(args.question, options)
            print(visible(json.dumps(dataclasses.asdict(answer), ensure_ascii=False, indent=2, default=str),
                          keep_lines=True))
            return 0
        streamed: list[str] = []
        for event in pipeline.stream(args.question, options):
            if isinstance(event, PassagesEvent) and not event.passages:
                print("(no passages retrieved)", file=sys.stderr)
            elif isinstance(event, TokenEvent):
                streamed.append(event.text)
                _say(event.text)
            elif isinstance(event, RetryEvent):
                _say(f"\n({event.reason})\n")
                streamed.clear()
            elif isinstance(event, DoneEvent):
                _say("\n")
                # The checks after generation may replace the streamed draft (a refusal, a quote for a bare
                # "[1]", dropped citation numbers): show what the answer finally is.
                if event.answer.text != "".join(streamed).strip():
                    _say(f"=> {event.answer.text}\n")
                _print_sources(event.answer)
    except QuestionError as exc:
        print(f"question rejected: {visible(str(exc))}", file=sys.stderr)
        return 2
    except ConfigError as exc:  # a check named by its module path that cannot be built
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KnowledgeBaseError as exc:  # missing, damaged, unreadable: the same line as `python -m retrieval`
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one clear line for the CLI user instead of a traceback
        print(f"error: {type(exc).__name__}: {visible(str(exc))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
