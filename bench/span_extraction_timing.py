"""Seconds the copied span of a marker-only answer adds (prompts/span_extraction.py), with the packaged LLM asked
afresh (no store): for every case of a saved keep-right run whose draft was citation markers alone in a language of
``[answer] span_languages``, the extraction prompt over the passage its draft cited first.

    python -m bench.span_extraction_timing bench/results/keep_right_s3_dis24.json

Prints one line per case (seconds, the span or "—" when the reply was not verbatim) and the median. Run it on an
idle machine for idle figures; the keep-right bench's own timings mostly replay stored generations."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

from app.config import load_settings
from app.generation.short_reply import ShortReplyWriter
from app.wiring import build_generator
from bench.lib.keep_right_sets import all_cases
from prompts.span_extraction import extraction_messages, verbatim_span


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a saved keep_right_bench run (bench/results/keep_right_*.json)")
    args = parser.parse_args(argv)
    settings = load_settings()
    a = settings.answer
    rows = [r for r in json.loads(args.run.read_text(encoding="utf-8"))["rows"]
            if r["signals"].get("marker_quote.markers_only") == 1.0 and r["language"] in a.span_languages]
    cases = {c.case_id: c for c in all_cases()}
    writer = ShortReplyWriter(build_generator(settings), settings.generation)
    writer.write(extraction_messages("warm-up", "warm-up", "en"), 1)  # load the model outside the timings
    seconds = []
    for row in rows:
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", row["drafts"][-1])]
        if not cited or cited[0] > len(row["passages"]):
            continue
        doc = row["passages"][cited[0] - 1]["doc"]
        passage = next(p.text for p in cases[row["case_id"]].passages if p.doc_id == doc)
        start = time.perf_counter()
        reply = writer.write(extraction_messages(row["question"], passage, row["language"]), a.span_max_new_tokens)
        seconds.append(time.perf_counter() - start)
        span = verbatim_span(reply, passage, a.span_max_share)
        print(f"{seconds[-1]:5.2f} s  {row['case_id']}  {span or '—'}")
    if not seconds:
        print("no marker-only drafts in", args.run)
        return 1
    print(f"\n{len(seconds)} extractions: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
