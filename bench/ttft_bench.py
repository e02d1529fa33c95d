"""Time to first token and start-up, before/after issue #19, side by side on the same questions.

"before": whole chunks packed into a 1024-token budget, read in one pass; "after": the configured
settings, so a candidate is tried through the environment, e.g. ``DOCQA_ANSWER__PACKING=sentences`` or
``DOCQA_ANSWER__CONTEXT_BUDGET_TOKENS=640`` (bench/RESULTS_TTFT.md lists the ones measured). Both run in one
process on the same loaded LLM, interleaved per question (before, after, before, after ...) so a busy machine slows
both alike; the prompt prefix every question shares is warmed first (AnswerPipeline.warm_up), as the chat page
does. Per system: prompt tokens per question and the share of answerable questions whose expected answer is in
the first prompt's passages (both load-independent), TTFT p50/p95 (question → first token, questions that reached
the LLM), total answer time, keyword accuracy, refusal rate on unanswerable questions and false refusals on
answerable ones (the rules of bench/answer_bench.py). Start-up: wall time of ``python -m app.cli.ask`` from launch to
the first answer byte, and of ``python -m ingest`` on one small file, in fresh processes. Load averages are
recorded with the figures.

    .venv/bin/python -m bench.ttft_bench            # seeds (all) + 20 CMRC 2018 trial questions, 3 start-ups
    .venv/bin/python -m bench.ttft_bench --quick    # 14 seeds + 6 CMRC questions, 1 start-up (a few minutes)
    .venv/bin/python -m bench.ttft_bench --tokens-only   # prompt tokens only (no generation; seconds)

Writes bench/results/ttft_<name>.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.answer.answer_pipeline import AnswerPipeline
from app.config import Settings, load_settings
from app.wiring import assemble_pipeline, build_generator
from bench.lib.answer_scoring import keyword_hit
from bench.lib.bench_kb import build_kb
from bench.lib.docqa_runs import pick_questions, run_docqa
from bench.lib.eval_data import Question, load_questions
from bench.lib.paths import CMRC_DIR, RESULTS_DIR, SEEDS_DIR, SEEDS_QUESTIONS

REPO = Path(__file__).resolve().parent.parent
# The settings before this work: whole chunks, 1024 tokens of passages, read in one pass (prompts/settings.py at
# issue #19's start).
BEFORE = {"packing": "chunks", "context_budget_tokens": 1024, "first_pass_budget_tokens": 0}
# A small English file for the ingest start-up figure (written fresh each run, so it is always new work).
SMALL_FILE = ("Start-up check\n\nThe ingest command reads this short note, splits it into passages, embeds them and "
              "writes them into a fresh knowledge base. It measures the fixed cost of one small file.\n")


class PromptRecorder:
    """The generator, recording the prompt tokens of every prompt it is asked to answer."""

    def __init__(self, generator) -> None:
        self._generator = generator
        self.prompt_tokens: list[int] = []
        self.passages_text: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._generator, name)

    def stream(self, messages, settings):
        self.prompt_tokens.append(self._generator.count_prompt_tokens(messages))
        user = messages[-1]["content"]
        self.passages_text.append(user[:user.rfind("</passages>")])
        yield from self._generator.stream(messages, settings)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(rows: list[dict], questions: list[Question]) -> dict:
    tokens = [r["prompt_tokens"] for r in rows if r["prompt_tokens"]]
    if rows and "refused" not in rows[0]:  # --tokens-only
        covered = [r["answer_in_prompt"] for r in rows if r["answer_in_prompt"] is not None]
        return {"n": len(rows), "prompt_tokens_mean": statistics.mean(tokens) if tokens else None,
                "prompt_tokens_p50": percentile(tokens, 0.5),
                "answer_in_prompt": sum(covered) / len(covered) if covered else None}
    by_qid = {q.qid: q for q in questions}
    answerable = [r for r in rows if by_qid[r["qid"]].answerable]
    unanswerable = [r for r in rows if not by_qid[r["qid"]].answerable]
    ttfts = [r["ttft"] for r in rows if r.get("ttft") is not None]
    return {
        "n": len(rows), "n_generated": len(ttfts),
        "answer_in_prompt": (statistics.mean(r["answer_in_prompt"] for r in rows if r["answer_in_prompt"] is not None)
                             if any(r["answer_in_prompt"] is not None for r in rows) else None),
        "prompt_tokens_mean": statistics.mean(tokens) if tokens else None,
        "prompt_tokens_p50": percentile(tokens, 0.5),
        "ttft_p50_s": percentile(ttfts, 0.5), "ttft_p95_s": percentile(ttfts, 0.95),
        "total_p50_s": percentile([r["seconds"] for r in rows if r.get("ttft") is not None], 0.5),
        "keyword_accuracy": sum(not r["refused"] and keyword_hit(r["answer"], by_qid[r["qid"]].answers)
                                for r in answerable) / max(1, len(answerable)),
        "refusal_unanswerable": sum(r["refused"] for r in unanswerable) / max(1, len(unanswerable)),
        "false_refusal": sum(r["refused"] for r in answerable) / max(1, len(answerable)),
        "n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
    }


def pipelines(settings: Settings, retriever, embedder, generator: PromptRecorder,
              after_only: bool = False) -> dict[str, AnswerPipeline]:
    after = {"after": assemble_pipeline(retriever, generator, embedder, settings)}
    if after_only:
        return after
    before = settings.model_copy(update={"answer": settings.answer.replace(**BEFORE)})
    return {"before": assemble_pipeline(retriever, generator, embedder, before), **after}


def packed_prompt(pipeline: AnswerPipeline, generator, q: Question) -> dict:
    """Prompt tokens the pipeline would send for ``q`` (no generation), and whether an expected answer string is
    in the packed passages (a load-independent bound on what the model can answer from them)."""
    from prompts.language import detect_language
    from prompts.templates import build_messages

    result = pipeline.retriever.retrieve(q.question)
    language = detect_language(q.question, pipeline.settings.answer.zh_min_cjk_share)
    # The first prompt sent: the first pass's passages when the pipeline reads in two passes.
    packed = pipeline._stages(q.question, list(result.passages), language, pipeline.settings.generation)[0]
    tokens = generator.count_prompt_tokens(build_messages(q.question, packed, language, pipeline._refusal(language)))
    return {"prompt_tokens": tokens,
            "answer_in_prompt": keyword_hit("\n".join(p.text for p in packed), q.answers) if q.answerable else None}


def run_questions(name: str, settings: Settings, corpus: Path, questions: list[Question], generator: PromptRecorder,
                  tokens_only: bool, after_only: bool = False) -> dict[str, list[dict]]:
    retriever, embedder, _ = build_kb(settings, corpus, f"answer-{name}")
    systems = pipelines(settings, retriever, embedder, generator, after_only)
    if not tokens_only:
        systems["after"].warm_up()
    rows: dict[str, list[dict]] = {s: [] for s in systems}
    for i, q in enumerate(questions):
        for system, pipeline in systems.items():  # interleaved: before, after, before, after ...
            if tokens_only:
                rows[system].append({"qid": q.qid, **packed_prompt(pipeline, generator, q)})
                continue
            generator.prompt_tokens.clear()
            generator.passages_text.clear()
            # A new question shares only the kept prefix with the last one: without this, "after" would reuse
            # the passages "before" just evaluated (the same top passages, in the same order).
            getattr(generator, "forget_context", lambda: None)()
            row = run_docqa(pipeline, q)
            # The first prompt of the question (a retry's second prompt is not on the way to the first token).
            row["prompt_tokens"] = generator.prompt_tokens[0] if generator.prompt_tokens else None
            row["answer_in_prompt"] = (keyword_hit(generator.passages_text[0], q.answers)
                                       if q.answerable and generator.passages_text else None)
            rows[system].append({"qid": q.qid, **row})
        print(f"  {name} {i + 1}/{len(questions)} {q.qid}: " + " | ".join(
            f"{s} {r[-1]['prompt_tokens']} tok" + (f" ttft {r[-1]['ttft']:.2f}s {r[-1]['answer'][:30]!r}"
                                                   if r[-1].get("ttft") else "")
            for s, r in rows.items()), file=sys.stderr)
    return rows


def time_ask(question: str, kb_dir: Path) -> float | None:
    """Seconds from launching ``python -m app.cli.ask`` to the first byte of its answer on stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli.ask", question, "--kb", str(kb_dir)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ,
                                                                                  "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    first = proc.stdout.read(1)
    elapsed = time.perf_counter() - started
    proc.stdout.read()
    proc.wait()
    return elapsed if first and proc.returncode == 0 else None


def time_ingest() -> float | None:
    """Seconds for ``python -m ingest`` of one small new file into a fresh knowledge base."""
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "note.md"
        note.write_text(SMALL_FILE, encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "ingest", str(note), "--kb", str(Path(tmp) / "kb")], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
    return elapsed if done.returncode == 0 else None


COLUMNS = ["prompt_tokens_mean", "answer_in_prompt", "ttft_p50_s", "ttft_p95_s", "total_p50_s", "keyword_accuracy",
           "refusal_unanswerable", "false_refusal"]


def print_table(title: str, summaries: dict[str, dict]) -> None:
    print(f"\n## {title}\n")
    print("| system | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for system, s in summaries.items():
        cells = ["-" if s.get(c) is None else f"{s[c]:.0f}" if c == "prompt_tokens_mean" else f"{s[c]:.2f}"
                 for c in COLUMNS]
        print(f"| {system} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ttft_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="14 seeds + 6 CMRC questions, one start-up of each")
    p.add_argument("--tokens-only", action="store_true", help="prompt tokens only: no generation, no start-ups")
    p.add_argument("--cmrc", type=int, help="CMRC 2018 trial questions (default 20, --quick 6)")
    p.add_argument("--startups", type=int, help="fresh-process start-ups of each command (default 3, --quick 1)")
    p.add_argument("--name", default="ttft")
    p.add_argument("--after-only", action="store_true",
                   help="the configured settings only (compare with an earlier run's 'before' on an idle machine)")
    args = p.parse_args(argv)
    settings = load_settings()
    cmrc_n = args.cmrc if args.cmrc is not None else (6 if args.quick else 20)
    startups = 0 if args.tokens_only else args.startups if args.startups is not None else (1 if args.quick else 3)
    seeds = (pick_questions(SEEDS_QUESTIONS, 10, 4, seed=0) if args.quick
             else pick_questions(SEEDS_QUESTIONS, None, None, seed=0))
    cmrc = load_questions(CMRC_DIR / "qa.jsonl", sample=cmrc_n, seed=0) if cmrc_n else []
    generator = PromptRecorder(build_generator(settings))
    load_before = os.getloadavg()
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv), "cpus": os.cpu_count(),
                    "load_before": load_before, "before_settings": BEFORE,
                    "after_settings": settings.answer.model_dump(), "generation": settings.generation.model_dump(),
                    "sets": {}}
    out = RESULTS_DIR / f"{args.name}{'_tokens' if args.tokens_only else ''}.json"
    for name, corpus, questions in (("seeds", SEEDS_DIR, seeds), ("cmrc", CMRC_DIR / "corpus.jsonl", cmrc)):
        if not questions:
            continue
        rows = run_questions(name, settings, corpus, questions, generator, args.tokens_only, args.after_only)
        result["sets"][name] = {"summaries": {s: summarise(r, questions) for s, r in rows.items()}, "rows": rows}
        print_table(f"{name}: {len(questions)} questions ({sum(q.answerable for q in questions)} answerable), "
                    f"load {os.getloadavg()[0]:.1f}", result["sets"][name]["summaries"])
    if startups:
        kb_dir = Path(settings.kb_dir)  # the last set's knowledge base (build_kb points settings at it)
        question = cmrc[0].question if cmrc else seeds[0].question
        asks = [time_ask(question, kb_dir) for _ in range(startups)]
        ingests = [time_ingest() for _ in range(startups)]
        result["startup"] = {"ask_first_token_s": asks, "ingest_one_file_s": ingests}
        print(f"\n`python -m app.cli.ask` launch → first answer byte: {asks} s")
        print(f"`python -m ingest` one small file: {ingests} s")
    result["load_after"] = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {result['load_after'][0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
