"""Dialogue benchmark: follow-up questions answered with the conversation, over the seed documents.

Each dialogue (bench/questions/dialogues_seeds.jsonl) has earlier turns and a last turn that cannot be understood
without them, plus the standalone form of that last turn. The earlier turns are answered once by the real
pipeline (cached in bench/results/dialogue_history.json) and become the history. The last turn is then run in
four ways:

- ``standalone``: the standalone form asked as a first message (the reference: what a perfect rewrite would get);
- ``rewrite`` (the default): the follow-up with history; the local LLM rewrites it, retrieval fuses both forms;
- ``append``: the follow-up with the previous question prepended, no LLM rewrite;
- ``off``: the follow-up alone.

Stage 1 (all dialogues, cheap): what each mode retrieves (gold-document hit@1 / hit@5), and for ``rewrite`` the
standalone form written, whether the guard kept it, and the rewrite's seconds. Stage 2 (``--answer N``
dialogues, the LLM answers): the last turn answered in each mode, interleaved per dialogue (standalone, rewrite,
append, off), scored with the answer bench's rules (bench/answer_bench.py): keyword accuracy, refusal of the
unanswerable follow-ups, false refusals, time to first token from the message (rewrite included).

    .venv/bin/python -m bench.dialogue_bench --answer 12

Writes bench/results/dialogue_seeds.json and prints tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from app.answer.answer_pipeline import (
    AnswerPipeline,
    AskOptions,
    DoneEvent,
    RetryEvent,
    TokenEvent,
)
from app.answer.conversation import Conversation
from app.answer.standalone_question import DISCARDED, RESOLVED, REWRITTEN, standalone_question
from app.config import Settings, load_settings
from app.wiring import assemble_pipeline, build_generator
from bench.lib.answer_scoring import keyword_hit
from bench.lib.bench_kb import build_kb
from bench.lib.llm_cache import CachedGenerator
from bench.lib.paths import QUESTIONS_DIR, RESULTS_DIR, SEEDS_DIR
from prompts.conversation import Turn

DIALOGUES = QUESTIONS_DIR / "dialogues_seeds.jsonl"
LLM_CACHE = RESULTS_DIR / "dialogue_llm.sqlite3"
MODES = ("standalone", "rewrite", "append", "off")
# The dialogue settings of each mode ("rewrite" is the shipped default: references resolved from the text first,
# a discarded rewrite falls back to the previous question + the message).
MODE_SETTINGS: dict[str, dict] = {
    "standalone": {"follow_up": "rewrite"}, "rewrite": {"follow_up": "rewrite"},
    "append": {"follow_up": "append"}, "off": {"follow_up": "off"}}
HALVES = ("tune", "report", "all")


@dataclass
class Dialogue:
    did: str
    lang: str
    turns: list[str]
    question: str
    standalone: str
    answers: list[str]
    gold_doc_ids: list[str]
    answerable: bool
    base_qid: str = ""
    answer_match: str = "any"
    shape: bool = False  # written for issue #26's reference shapes (ordinals, 前者/后者, 它们, …)
    history: list[Turn] = field(default_factory=list)


def load_dialogues(path: Path) -> list[Dialogue]:
    return [Dialogue(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def half_of(did: str) -> str:
    """The fixed split: CRC-32 of the dialogue id, even → tune, odd → report (rules and thresholds are tuned on the
    tune half only; the report half's figures are the ones reported)."""
    return "report" if zlib.crc32(did.encode("utf-8")) % 2 else "tune"


def pick(dialogues: list[Dialogue], limit: int | None, unanswerable_first: bool = False) -> list[Dialogue]:
    """All dialogues, or the first ``limit`` in the order answerable, answerable, answerable, unanswerable, ...
    (a CPU run cannot afford all of them; every slice keeps both kinds) — or every unanswerable one first, when
    the refusals are what a short run must measure."""
    answerable = [d for d in dialogues if d.answerable]
    unanswerable = [d for d in dialogues if not d.answerable]
    if unanswerable_first:
        return (unanswerable + answerable)[:limit]
    mixed: list[Dialogue] = []
    while answerable or unanswerable:
        mixed += answerable[:3] + unanswerable[:1]
        answerable, unanswerable = answerable[3:], unanswerable[1:]
    return mixed[:limit]


_BASE_DIALOGUE: dict[int, object] = {}


def with_mode(pipeline: AnswerPipeline, mode: str) -> None:
    """The pipeline's dialogue settings as configured, changed only by what ``mode`` sets."""
    base = _BASE_DIALOGUE.setdefault(id(pipeline), pipeline.settings.dialogue)
    pipeline.settings.dialogue = base.replace(**MODE_SETTINGS[mode])  # type: ignore[attr-defined]


def answer_history(pipeline: AnswerPipeline, d: Dialogue, name: str) -> None:
    """The earlier turns of a dialogue, answered by the real pipeline (default mode) once and cached per set
    (the cached chunk ids belong to that set's base)."""
    history_cache = RESULTS_DIR / f"dialogue_history_{name}.json"
    cache = json.loads(history_cache.read_text(encoding="utf-8")) if history_cache.exists() else {}
    with_mode(pipeline, "rewrite")
    key = "\n".join(d.turns)
    if key not in cache:
        chat = Conversation(pipeline)
        for question in d.turns:
            chat.ask(question)
        cache[key] = [{"question": t.question, "answer": t.answer,
                       "chunk_ids": [p.chunk.chunk_id for p in t.passages]} for t in chat.history]
        history_cache.parent.mkdir(parents=True, exist_ok=True)
        history_cache.write_text(json.dumps(cache, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"  history {d.did}: {cache[key][-1]['answer'][:50]!r}", file=sys.stderr)
    kb = pipeline.retriever.kb
    d.history = [Turn(t["question"], t["answer"],
                      [_as_passage(c) for c in kb.get_chunks(t["chunk_ids"])]) for t in cache[key]]


def questions_only(d: Dialogue) -> None:
    """History without answers: enough for the modes that call no LLM (off, append, standalone)."""
    d.history = [Turn(question, "") for question in d.turns]


def _as_passage(chunk):
    from retrieval.results import ScoredChunk

    return ScoredChunk(chunk=chunk)


def doc_id_of(passage, corpus) -> str:
    return corpus.doc_id_of_file.get(Path(passage.chunk.source).name, passage.chunk.source)


def gold_ranks(passages, d: Dialogue, corpus) -> int | None:
    gold = set(d.gold_doc_ids)
    return next((rank for rank, p in enumerate(passages, 1) if doc_id_of(p, corpus) in gold), None)


def retrieval_stage(pipeline: AnswerPipeline, d: Dialogue, corpus, modes=MODES) -> dict:
    """What each mode searches for and retrieves (the rewrite through the real LLM and guard)."""
    settings = pipeline.settings
    row: dict = {"did": d.did}
    for mode in modes:
        with_mode(pipeline, mode)
        message, history = (d.standalone, []) if mode == "standalone" else (d.question, d.history)
        start = time.perf_counter()
        standalone = standalone_question(message, history, pipeline.generator, settings.generation,
                                         settings.dialogue, settings.answer, settings.limits.max_question_chars)
        passages = pipeline._retrieve(message, standalone, AskOptions()).passages
        # The follow-up's own path, resolution or rewrite + its retrieval(s): compared with the standalone form's
        # retrieval this is the time a follow-up adds.
        path_s = time.perf_counter() - start
        row[mode] = {"searched": standalone.text, "method": standalone.method, "rank": gold_ranks(passages, d, corpus),
                     "path_s": path_s}
        if mode == "rewrite":
            row[mode].update(rewrite=standalone.rewrite, seconds=standalone.seconds, reason=standalone.reason,
                             cues=standalone.cues)
    return row


def answer_stage(pipeline: AnswerPipeline, d: Dialogue, mode: str) -> dict:
    with_mode(pipeline, mode)
    message, history = (d.standalone, []) if mode == "standalone" else (d.question, d.history)
    started = time.perf_counter()
    ttft, answer, retried = None, None, False
    for event in pipeline.stream(message, AskOptions(history=list(history))):
        if isinstance(event, TokenEvent) and ttft is None:
            ttft = time.perf_counter() - started
        elif isinstance(event, RetryEvent):
            retried = True
        elif isinstance(event, DoneEvent):
            answer = event.answer
    assert answer is not None
    before_generation = "generate" not in answer.timings
    hit = not answer.refused and keyword_hit(answer.text, d.answers)
    return {"did": d.did, "mode": mode, "answer": answer.text, "refused": answer.refused, "hit": hit,
            "refusal_reason": answer.refusal_reason, "searched": answer.standalone_question,
            "follow_up": answer.follow_up, "retried": retried, "rewrite_s": answer.timings.get("rewrite"),
            "ttft": None if before_generation else ttft, "seconds": time.perf_counter() - started}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarise_retrieval(rows: list[dict], dialogues: dict[str, Dialogue]) -> dict:
    out = {}
    answerable = [r for r in rows if dialogues[r["did"]].answerable]
    for mode in MODES:
        ranks = [r[mode]["rank"] for r in answerable if mode in r]
        if not ranks:
            continue
        out[mode] = {"hit@1": sum(x == 1 for x in ranks) / max(1, len(ranks)),
                     "hit@5": sum(x is not None and x <= 5 for x in ranks) / max(1, len(ranks)), "n": len(ranks)}
    rewrites = [r["rewrite"] for r in rows if "rewrite" in r]
    if not rewrites:
        return out
    added = [r["rewrite"]["path_s"] - r["standalone"]["path_s"] for r in rows
             if "path_s" in r.get("rewrite", {}) and "path_s" in r.get("standalone", {})
             and r["rewrite"]["method"] not in ("independent", "first message")]
    out["rewrite_stats"] = {
        "resolved": sum(r["method"] == RESOLVED for r in rewrites),
        "kept": sum(r["method"] == REWRITTEN for r in rewrites), "n": len(rewrites),
        "discarded": sum(r["method"] == DISCARDED for r in rewrites),
        "discarded_share": sum(r["method"] == DISCARDED for r in rewrites) / max(
            1, sum(r["method"] in (RESOLVED, REWRITTEN, DISCARDED) for r in rewrites)),
        "median_added_s": _median(added),
        "not_detected": sum(r["method"] == "independent" and not r["cues"] for r in rewrites),
        "median_rewrite_s": _median(timed := sorted(r["seconds"] for r in rewrites if r["seconds"])),
        "p90_rewrite_s": timed[int(0.9 * (len(timed) - 1))] if timed else None}
    return out


def summarise_answers(rows: list[dict], dialogues: dict[str, Dialogue]) -> dict:
    out = {}
    for mode in MODES:
        mine = [r for r in rows if r["mode"] == mode]
        answerable = [r for r in mine if dialogues[r["did"]].answerable]
        unanswerable = [r for r in mine if not dialogues[r["did"]].answerable]
        out[mode] = {
            "keyword_accuracy": sum(r["hit"] for r in answerable) / max(1, len(answerable)),
            "refusal_unanswerable": sum(r["refused"] for r in unanswerable) / max(1, len(unanswerable)),
            "false_refusal": sum(r["refused"] for r in answerable) / max(1, len(answerable)),
            "median_ttft_s": _median([r["ttft"] for r in mine if r["ttft"] is not None]),
            "median_rewrite_s": _median([r["rewrite_s"] for r in mine if r["rewrite_s"]]),
            "n_answerable": len(answerable), "n_unanswerable": len(unanswerable)}
    return out


def print_tables(result: dict) -> None:
    r = result.get("retrieval_summary")
    if r:
        print("\nretrieval of the last turn (answerable dialogues, gold document):")
        print(f"{'mode':12} {'hit@1':>6} {'hit@5':>6}   n")
        for mode in (m for m in MODES if m in r):
            print(f"{mode:12} {r[mode]['hit@1']:6.3f} {r[mode]['hit@5']:6.3f} {r[mode]['n']:3d}")
        print("rewrite:", json.dumps(r.get("rewrite_stats")))
    a = result.get("answer_summary")
    if a:
        print("\nlast-turn answers:")
        print(f"{'mode':12} {'kw acc':>7} {'refuse-u':>8} {'false-ref':>9} {'ttft':>6} {'rewrite':>7}   n(a/u)")
        for mode in (m for m in MODES if a[m]["n_answerable"] + a[m]["n_unanswerable"]):
            s = a[mode]
            ttft = f"{s['median_ttft_s']:.2f}" if s["median_ttft_s"] else "-"
            rw = f"{s['median_rewrite_s']:.2f}" if s["median_rewrite_s"] else "-"
            print(f"{mode:12} {s['keyword_accuracy']:7.3f} {s['refusal_unanswerable']:8.3f} "
                  f"{s['false_refusal']:9.3f} {ttft:>6} {rw:>7}   {s['n_answerable']}/{s['n_unanswerable']}")


def rejudge(path: Path, dialogues: dict[str, Dialogue], settings: Settings) -> None:
    """Apply the current rewrite guard to the rewrites a saved run stored (the guard is deterministic; the LLM's
    rewrites are what cost the time) and print each decision."""
    from prompts.rewrite_guard import check_rewrite

    rows = json.loads(path.read_text(encoding="utf-8"))["retrieval_rows"]
    dialogue, answer = settings.dialogue, settings.answer
    kept = 0
    for row in rows:
        d, rw = dialogues[row["did"]], row["rewrite"]
        if not rw.get("rewrite"):
            continue
        history = [t for t in d.turns]
        verdict = check_rewrite(d.question, rw["rewrite"], history, answer.zh_min_cjk_share, dialogue.min_kept_share,
                                dialogue.max_new_token_share, dialogue.max_rewrite_chars)
        unchanged = rw["rewrite"].strip() == d.question.strip()
        kept += verdict.accepted and not unchanged
        state = "echo" if unchanged else "kept" if verdict.accepted else f"discarded ({verdict.reason})"
        print(f"{d.did} {rw['seconds']:6.1f} s  {d.question} -> {rw['rewrite']}  [{state}]  "
              f"standalone: {d.standalone}")
    print(f"kept {kept} of {sum(1 for r in rows if r['rewrite'].get('rewrite'))} rewrites")


def combine(paths: list[Path]) -> None:
    """Print the tables of several saved runs taken together (e.g. one per set), the dialogues looked up in
    bench/questions/dialogues_*.jsonl by id; a run's answered dialogues only."""
    dialogues = {d.did: d for f in sorted(QUESTIONS_DIR.glob("dialogues_*.jsonl")) for d in load_dialogues(f)}
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    answer_rows = [r for run in runs for r in run.get("answer_rows", [])]
    answered = {r["did"] for r in answer_rows}
    retrieval_rows = [r for run in runs for r in run["retrieval_rows"] if r["did"] in answered or not answer_rows]
    print_tables({"retrieval_summary": summarise_retrieval(retrieval_rows, dialogues),
                  "answer_summary": summarise_answers(answer_rows, dialogues)})
    shapes = {r["did"] for r in answer_rows if dialogues[r["did"]].shape}
    if shapes:
        print(f"\nthe {len(shapes)} dialogues of the reference shapes (ordinals, 前者/后者, 它们, …):")
        print_tables({"answer_summary": summarise_answers([r for r in answer_rows if r["did"] in shapes], dialogues)})


class _NoLLM:
    """Stands in for the LLM in a --no-llm run, where nothing may call it."""

    name, n_ctx = "none", 4096

    def stream(self, messages, settings):
        raise RuntimeError("--no-llm: this mode needs the LLM")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dialogue_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dialogues", type=Path, default=DIALOGUES)
    p.add_argument("--half", choices=HALVES, default="all",
                   help="the dialogues of one half of the fixed split (CRC-32 of the id: odd = report, even = tune)")
    p.add_argument("--limit", type=int, help="stage 1 on N dialogues (3 answerable : 1 unanswerable)")
    p.add_argument("--answer", type=int, default=0, help="stage 2 on the first N of those dialogues")
    p.add_argument("--unanswerable-first", action="store_true",
                   help="order the dialogues unanswerable first (instead of 3 answerable : 1 unanswerable)")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--name", default="seeds")
    p.add_argument("--no-llm", action="store_true",
                   help="stage 1 for the modes that call no LLM only (standalone, append, off); no LLM is loaded")
    p.add_argument("--questions-only", action="store_true",
                   help="stage 1 with the earlier questions as the history, without their answers (no LLM answers "
                        "for the history: only the rewrite calls the LLM)")
    p.add_argument("--corpus", type=Path, default=SEEDS_DIR,
                   help="the seed documents (default ../shared/seeds beside the repository)")
    p.add_argument("--rejudge", type=Path, help="re-apply the current rewrite guard to a saved run's rewrites, exit")
    p.add_argument("--combine", type=Path, nargs="+", help="print the tables of saved runs taken together, exit")
    args = p.parse_args(argv)

    if args.combine:
        combine(args.combine)
        return 0
    settings: Settings = load_settings()
    if args.rejudge:
        rejudge(args.rejudge, {d.did: d for d in load_dialogues(args.dialogues)}, settings)
        return 0
    settings.generation.max_new_tokens = args.max_new_tokens
    dialogues = pick([d for d in load_dialogues(args.dialogues) if args.half in ("all", half_of(d.did))], args.limit,
                     args.unanswerable_first)
    by_id = {d.did: d for d in dialogues}
    retriever, embedder, corpus = build_kb(settings, args.corpus, f"answer-{args.name}")
    # What the LLM said is kept (bench/lib/llm_cache.py): a rerun after a change asks it only what is new; the
    # seconds of a rerun are then replay times (the result file says how many generations were replayed).
    generator = _NoLLM() if args.no_llm else CachedGenerator(build_generator(settings), LLM_CACHE)
    pipeline = assemble_pipeline(retriever, generator, embedder, settings)
    if not args.no_llm:
        pipeline.warm_up()  # as the chat page and `python -m app.cli.chat` do at start
    out = RESULTS_DIR / f"dialogue_{args.name}.json"
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv), "half": args.half,
                    "load_average_start": os.getloadavg(), "dialogue_settings": settings.dialogue.model_dump(),
                    "max_new_tokens": args.max_new_tokens}

    def save() -> None:
        result["load_average_now"] = os.getloadavg()
        result["llm_cache"] = {"hits": getattr(generator, "hits", 0), "misses": getattr(generator, "misses", 0)}
        out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")

    result["retrieval_rows"] = []
    for i, d in enumerate(dialogues):
        if args.questions_only:
            questions_only(d)
            result["retrieval_rows"].append(retrieval_stage(pipeline, d, corpus))
            rw = result["retrieval_rows"][-1]["rewrite"]
            print(f"  retrieval {i + 1}/{len(dialogues)} {d.did}: {rw['method']}: {rw['searched'][:60]!r} "
                  f"({rw['seconds']:.2f} s)", file=sys.stderr)
        elif args.no_llm:
            questions_only(d)
            result["retrieval_rows"].append(retrieval_stage(pipeline, d, corpus, ("standalone", "append", "off")))
        else:
            answer_history(pipeline, d, args.name)
            result["retrieval_rows"].append(retrieval_stage(pipeline, d, corpus))
            rw = result["retrieval_rows"][-1]["rewrite"]
            print(f"  retrieval {i + 1}/{len(dialogues)} {d.did}: {rw['method']}: {rw['searched'][:60]!r} "
                  f"({rw['seconds']:.2f} s)", file=sys.stderr)
        result["retrieval_summary"] = summarise_retrieval(result["retrieval_rows"], by_id)
        save()
    if args.answer:
        picked = dialogues[:args.answer]
        result["answer_rows"] = []
        for i, d in enumerate(picked):
            for mode in args.modes:  # interleaved per dialogue: load drifts hit every mode alike
                result["answer_rows"].append(answer_stage(pipeline, d, mode))
                row = result["answer_rows"][-1]
                print(f"  answer {i + 1}/{len(picked)} {d.did} {mode}: hit={row['hit']} refused={row['refused']} "
                      f"{row['answer'][:50]!r}", file=sys.stderr)
            result["answer_summary"] = summarise_answers(result["answer_rows"], by_id)
            save()
    save()
    print_tables(result)
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
