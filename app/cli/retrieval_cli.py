"""``python -m retrieval "问题"``: show the ranked passages for a question with every stage's score.

Exit status: 0 passages shown, 2 bad question, configuration or knowledge base (one line on stderr)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli.base_choice import add_base_arguments, settings_from_args
from app.config import ConfigError
from app.wiring import build_retriever, kb_notices, quiet_model_libraries
from ingest.visible_text import visible
from retrieval.results import RetrievalResult, result_as_dict


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m retrieval", description=__doc__)
    parser.add_argument("query", help="the question to search for")
    add_base_arguments(parser)
    parser.add_argument("--passages", "--k", type=int, dest="passages",
                        help="how many passages to show (default: retrieval.top_k)")
    switch = parser.add_mutually_exclusive_group()
    switch.add_argument("--rerank", action="store_true", help="rerank the candidates (default: retrieval.rerank)")
    switch.add_argument("--no-rerank", action="store_true", help="skip the reranker")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser.parse_args(argv)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_text(result: RetrievalResult) -> None:
    # File names, headings and passages come from documents: their control and bidi characters are shown escaped.
    for rank, p in enumerate(result.passages, start=1):
        chunk = p.chunk
        where = visible(chunk.source) + (f"  {chunk.page_label}" if chunk.page_label else "")
        print(f"[{rank}] {where}" + (f"  § {visible(chunk.heading)}" if chunk.heading else ""))
        print(f"    chunk {chunk.chunk_id}  dense {_fmt(p.dense_score)} (#{p.dense_rank or '-'})  "
              f"bm25 {_fmt(p.bm25_score)} (#{p.bm25_rank or '-'})  fused {_fmt(p.fused_score)}  "
              f"rerank {_fmt(p.rerank_score)}")
        print("    " + visible(p.text, keep_lines=True).replace("\n", "\n    "))
        print()
    print("timings (ms): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in result.timings.items()))


def _as_json(result: RetrievalResult) -> str:
    # The same JSON, with bidi and C1 characters written as \uXXXX escapes (json.dumps keeps them raw).
    return visible(json.dumps(result_as_dict(result), ensure_ascii=False, indent=2), keep_lines=True)


def main(argv: list[str] | None = None) -> int:
    quiet_model_libraries()
    args = _parse_args(argv)
    from ingest.store.knowledge_base import KnowledgeBaseError
    from retrieval.question_check import QuestionError, validate_question

    try:
        settings = settings_from_args(args)
        query = validate_question(args.query, settings.limits)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except QuestionError as exc:
        print(f"question rejected: {exc}", file=sys.stderr)
        return 2
    rerank = True if args.rerank else False if args.no_rerank else None
    try:
        retriever = build_retriever(settings, with_reranker=rerank)
        for notice in kb_notices(retriever):
            print(f"note: {visible(notice)}", file=sys.stderr)
        result = retriever.retrieve(query, top_k=args.passages, rerank=rerank)
    except (KnowledgeBaseError, ValueError) as exc:
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        print(_as_json(result))
    else:
        _print_text(result)
    return 0

