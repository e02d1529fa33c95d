"""Answer benchmark: docqa's grounded pipeline vs the naive LangChain "stuff" chain, on the same local LLM.

For each question (answerable or not) both systems answer; reported per system: keyword accuracy (an expected
answer string appears in the answer; a refusal counts as wrong), refusal rate on unanswerable questions,
false-refusal rate on answerable ones, citation validity (docqa: share of [n] markers naming a real passage,
share of answers citing at least one), time to first token (question submitted → first token, over questions
that reached the LLM) and decoding tokens/s.

The naive chain is LangChain's RAG tutorial: RecursiveCharacterTextSplitter(1000/200) + FAISS similarity search
(k=4) + the tutorial prompt ("Use the following pieces of retrieved context ... If you don't know the answer,
just say that you don't know"), stuffed and sent to the same LLM with the same decoding settings. Its refusals are
recognised by "don't know"-style phrases (it has no fixed refusal sentence).

    .venv/bin/python -m bench.answer_bench --answerable 15

Writes bench/results/answer_<name>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from app.config import Settings, load_settings
from app.wiring import assemble_pipeline, build_generator
from bench.lib.answer_overrides import with_answer_settings
from bench.lib.answer_scoring import keyword_hit, naive_refused
from bench.lib.bench_kb import build_kb
from bench.lib.docqa_runs import pick_questions, run_docqa
from bench.lib.eval_data import Question, load_questions
from bench.lib.llm_cache import CachedGenerator
from bench.lib.paths import RESULTS_DIR, SEEDS_DIR, SEEDS_QUESTIONS

TUTORIAL_PROMPT = (
    "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to answer "
    "the question. If you don't know the answer, just say that you don't know. Use three sentences maximum and "
    "keep the answer concise.\nQuestion: {question}\nContext: {context}\nAnswer:")
TUTORIAL_K = 4
def run_naive(chain, retriever, llm_tokens, q: Question) -> dict:
    started = time.perf_counter()
    docs = retriever.search(q.question, TUTORIAL_K)
    context = "\n\n".join(d.page_content for d in docs)
    ttft, first_at, pieces = None, None, []
    for piece in chain.stream({"question": q.question, "context": context}):
        if piece and ttft is None:
            first_at = time.perf_counter()
            ttft = first_at - started
        pieces.append(piece)
    end = time.perf_counter()
    text = "".join(pieces).strip()
    n = llm_tokens(text) if text else 0
    tps = (n - 1) / (end - first_at) if first_at and n > 1 and end > first_at else None
    return {"answer": text, "refused": naive_refused(text), "ttft": ttft, "tokens_per_s": tps,
            "seconds": end - started}


def summarise(rows: list[dict], questions: list[Question], with_citations: bool) -> dict:
    answerable = [(r, q) for r, q in zip(rows, questions) if q.answerable]
    unanswerable = [r for r, q in zip(rows, questions) if not q.answerable]
    answered = [r for r in rows if not r["refused"]]
    ttfts = [r["ttft"] for r in rows if r.get("ttft") is not None]
    tps = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s")]
    summary = {
        "keyword_accuracy": sum(not r["refused"] and keyword_hit(r["answer"], q.answers)
                                for r, q in answerable) / max(1, len(answerable)),
        "refusal_unanswerable": sum(r["refused"] for r in unanswerable) / max(1, len(unanswerable)),
        "false_refusal": sum(r["refused"] for r, _ in answerable) / max(1, len(answerable)),
        "median_ttft_s": statistics.median(ttfts) if ttfts else None,
        "median_tokens_per_s": statistics.median(tps) if tps else None,
        "n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
    }
    if with_citations:
        total = sum(r["citations"] for r in answered)
        summary["citation_validity"] = sum(r["valid_citations"] for r in answered) / total if total else None
        summary["answers_with_citation"] = sum(r["valid_citations"] > 0 for r in answered) / max(1, len(answered))
        summary["gate_refusals"] = sum(r["gated"] for r in rows)
        summary["flagged_sentences"] = sum(r["flagged"] for r in rows)
        summary["checked_sentences"] = sum(r["checked"] for r in rows)
    return summary


def with_gate(rows: list[dict], threshold: float) -> list[dict]:
    """The docqa rows as they would be with the evidence gate at ``threshold``: the gate only decides whether
    the LLM is called, so a gated question becomes the refusal and everything else is unchanged."""
    out = []
    for r in rows:
        if r["evidence"] is None or r["evidence"] < threshold:
            r = {**r, "refused": True, "gated": True, "ttft": None, "tokens_per_s": None, "citations": 0,
                 "valid_citations": 0, "flagged": 0, "checked": 0}
        out.append(r)
    return out


COLUMNS = ["keyword_accuracy", "refusal_unanswerable", "false_refusal", "citation_validity",
           "answers_with_citation", "median_ttft_s", "median_tokens_per_s"]


def print_table(title: str, summaries: dict[str, dict]) -> None:
    print(f"\n## {title}\n")
    print("| system | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, summary in summaries.items():
        cells = ["-" if summary.get(c) is None else f"{summary[c]:.3f}" if c != "median_tokens_per_s"
                 else f"{summary[c]:.1f}" for c in COLUMNS]
        print(f"| {name} | " + " | ".join(cells) + " |")


def report(paths: list[Path], questions_path: Path, gate_at: list[float]) -> None:
    """Compare saved runs (e.g. --only docqa and --only naive, run in parallel) on the questions all finished."""
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    systems: dict[str, list[dict]] = {}
    for run in runs:  # runs of one system over different questions add up
        for name, rows in run["rows"].items():
            systems.setdefault(name, []).extend(rows)
    common = set.intersection(*({r["qid"] for r in rows} for rows in systems.values()))
    questions = [q for q in load_questions(questions_path) if q.qid in common]
    order = {q.qid: i for i, q in enumerate(questions)}
    systems = {name: sorted((r for r in rows if r["qid"] in common), key=lambda r: order[r["qid"]])
               for name, rows in systems.items()}
    for t in gate_at:
        systems[f"docqa, gate at {t:g}"] = with_gate(systems["docqa"], t)
    summaries = {name: summarise(rows, questions, with_citations=name.startswith("docqa"))
                 for name, rows in systems.items()}
    print_table(f"{len(questions)} questions finished by every system "
                f"({sum(q.answerable for q in questions)} answerable)", summaries)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.answer_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=SEEDS_DIR, help="folder of files or a corpus.jsonl")
    p.add_argument("--questions", type=Path, default=SEEDS_QUESTIONS)
    p.add_argument("--name", default="seeds")
    p.add_argument("--answerable", type=int, help="answer N answerable questions drawn at random (default all)")
    p.add_argument("--unanswerable", type=int, help="answer N unanswerable questions drawn at random (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--qids", nargs="+", help="answer exactly these questions (overrides the random picks)")
    p.add_argument("--only", choices=["docqa", "naive"], help="run one system (e.g. the two in parallel processes)")
    p.add_argument("--max-new-tokens", type=int, help="override GenerationSettings.max_new_tokens")
    p.add_argument("--gate-at", type=float, action="append", default=[],
                   help="also report docqa as if AnswerSettings.min_evidence_score were this (repeatable); "
                        "run with the gate off (DOCQA_ANSWER__MIN_EVIDENCE_SCORE=-1) to compare thresholds")
    p.add_argument("--report", type=Path, nargs="+", help="only compare saved answer_*.json runs and exit")
    p.add_argument("--answer", nargs="+", default=[], metavar="KEY=VALUE",
                   help="[answer] settings for this run (VALUE as JSON when it is JSON), e.g. decision=acceptance")
    p.add_argument("--llm-store", type=Path,
                   help="keep what the LLM says in this SQLite file and answer repeated prompts from it "
                        "(bench/lib/llm_cache.py): a re-run after a change to the checks only re-checks")
    args = p.parse_args(argv)
    if args.report:
        report(args.report, args.questions, args.gate_at)
        return 0

    settings: Settings = with_answer_settings(load_settings(), args.answer)
    if args.max_new_tokens:
        settings.generation.max_new_tokens = args.max_new_tokens
    if args.qids:
        questions = [q for q in load_questions(args.questions) if q.qid in set(args.qids)]
    else:
        questions = pick_questions(args.questions, args.answerable, args.unanswerable, args.seed)
    retriever, embedder, corpus = build_kb(settings, args.corpus, f"answer-{args.name}")
    generator = build_generator(settings)
    if args.llm_store:
        generator = CachedGenerator(generator, args.llm_store)
    pipeline = assemble_pipeline(retriever, generator, embedder, settings)

    systems: dict[str, list[dict]] = {}
    out = RESULTS_DIR / f"answer_{args.name}{'_' + args.only if args.only else ''}.json"

    def save() -> None:
        """Rewrite the results after every question: a long CPU run that is stopped still leaves its figures."""
        done = {name: rows for name, rows in systems.items() if rows}
        answered = [q for q in questions if all(any(r["qid"] == q.qid for r in rows) for rows in done.values())]
        gated = {f"docqa, gate at {t:g}": with_gate(done["docqa"], t) for t in args.gate_at if "docqa" in done}
        summaries = {name: summarise(rows, answered, with_citations=name.startswith("docqa"))
                     for name, rows in {**done, **gated}.items()}
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M"), "command": " ".join(sys.argv), "llm": generator.name,
            "generation": settings.generation.model_dump(mode="json"),
            "answer_settings": settings.answer.model_dump(mode="json"),
            "retrieval_rerank": settings.retrieval.rerank, "questions": [q.qid for q in questions],
            "n_done": len(answered), "summaries": summaries, "rows": done},
            ensure_ascii=False, indent=2), encoding="utf-8")

    if args.only in (None, "docqa"):
        systems["docqa"] = []
        for i, q in enumerate(questions):
            systems["docqa"].append({"qid": q.qid, **run_docqa(pipeline, q)})
            print(f"  docqa {i + 1}/{len(questions)} {q.qid}: {systems['docqa'][-1]['answer'][:60]!r}",
                  file=sys.stderr)
            save()
    if args.only in (None, "naive"):
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate

        from app.langchain.chat_model_adapter import LocalChatModel
        from bench.lib.langchain_baseline import (
            CachedEmbeddings,
            NaiveLangChainRetriever,
        )

        naive = NaiveLangChainRetriever(corpus.texts, CachedEmbeddings(
            embedder, RESULTS_DIR / f"kb-answer-{args.name}" / "baseline_embeddings.sqlite3",
            settings.embedder.batch_size))
        llm = LocalChatModel(generator=generator, generation=settings.generation)
        chain = ChatPromptTemplate.from_template(TUTORIAL_PROMPT) | llm | StrOutputParser()
        systems["langchain naive"] = []
        for i, q in enumerate(questions):
            systems["langchain naive"].append({"qid": q.qid, **run_naive(chain, naive, generator.count_tokens, q)})
            print(f"  naive {i + 1}/{len(questions)} {q.qid}: {systems['langchain naive'][-1]['answer'][:60]!r}",
                  file=sys.stderr)
            save()

    save()
    result = json.loads(out.read_text(encoding="utf-8"))
    print_table(f"{args.name}: {len(questions)} questions ({sum(q.answerable for q in questions)} answerable), "
                f"LLM {generator.name}", result["summaries"])
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
