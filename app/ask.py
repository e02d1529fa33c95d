"""``python -m app.ask "问题"``: stream a grounded answer to the terminal, then list its sources and flags."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from app.answer_pipeline import (
    DoneEvent,
    PassagesEvent,
    QuestionError,
    RetryEvent,
    TokenEvent,
    build_pipeline,
)
from app.config import ConfigError, load_settings
from prompts.records import Answer

_EXCERPT_CHARS = 160


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app.ask", description=__doc__)
    p.add_argument("question", help="the question (Chinese or English)")
    p.add_argument("--kb", type=Path, help="knowledge base folder (default: Settings.kb_path)")
    p.add_argument("--json", action="store_true", help="print the whole Answer as JSON instead of streaming")
    p.add_argument("--backend", choices=["llama_cpp", "transformers", "openai"])
    p.add_argument("--model", help="GGUF path, HF model path/name, or server model name")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--no-repeat-ngram-size", type=int)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--top-k-passages", type=int, help="passages to retrieve (RetrievalSettings.top_k)")
    return p


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT_CHARS else flat[:_EXCERPT_CHARS] + "…"


def _print_sources(answer: Answer) -> None:
    out = sys.stdout
    if answer.refused:
        out.write(f"\n(refused: {answer.refusal_reason})\n")
    if answer.citations:
        out.write("\nSources:\n")
        for c in answer.citations:
            chunk = c.passage.chunk
            where = chunk.source + (f", p.{chunk.page}" if chunk.page is not None else "")
            heading = f" — {chunk.heading}" if chunk.heading_path else ""
            out.write(f"[{c.number}] {where}{heading}\n    {_excerpt(c.quoted_text)}\n")
    flagged = [c for c in answer.checks if not c.supported]
    for check in flagged:
        out.write(f"! weakly supported ({check.support_score:.2f}): {check.sentence}\n")
    t = answer.timings
    figures = [f"{k}={t[k]:.2f}s" for k in ("retrieve", "first_token", "generate") if k in t]
    if "tokens_per_s" in t:
        figures.append(f"{t['tokens_per_s']:.1f} tokens/s")
    out.write("(" + ", ".join(figures) + ")\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.kb:
        settings.kb_dir = args.kb
    if args.top_k_passages:
        settings.retrieval.top_k = args.top_k_passages
    gen = settings.generation
    for flag, field in (("backend", "backend"), ("model", "model"), ("temperature", "temperature"),
                        ("top_p", "top_p"), ("top_k", "top_k"), ("repetition_penalty", "repetition_penalty"),
                        ("no_repeat_ngram_size", "no_repeat_ngram_size"), ("max_new_tokens", "max_new_tokens")):
        if getattr(args, flag) is not None:
            setattr(gen, field, getattr(args, flag))
    try:
        pipeline = build_pipeline(settings)
        if args.json:
            answer = pipeline.answer(args.question)
            print(json.dumps(dataclasses.asdict(answer), ensure_ascii=False, indent=2, default=str))
            return 0
        streamed: list[str] = []
        for event in pipeline.stream(args.question):
            if isinstance(event, PassagesEvent) and not event.passages:
                print("(no passages retrieved)", file=sys.stderr)
            elif isinstance(event, TokenEvent):
                streamed.append(event.text)
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, RetryEvent):
                sys.stdout.write(f"\n({event.reason})\n")
                streamed.clear()
            elif isinstance(event, DoneEvent):
                sys.stdout.write("\n")
                # The checks after generation may replace the streamed draft (a refusal, a quote for a bare
                # "[1]", dropped citation numbers): show what the answer finally is.
                if event.answer.text != "".join(streamed).strip():
                    sys.stdout.write(f"=> {event.answer.text}\n")
                _print_sources(event.answer)
    except QuestionError as exc:
        print(f"question rejected: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one clear line for the CLI user instead of a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
