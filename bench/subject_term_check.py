"""LLM-free measurement of the Chinese subject term as a name (prompts/question_names.py, ``subject_terms``).

The name gate refuses before generation when the question names something no packed passage mentions; it reads
Latin terms only. "投机解码是怎么做的？" over passages that never write 投机解码 is a near miss it lets through
(dialogue bench, dlg-42). Chinese paraphrase is common, so before the question's Chinese subject joins the names, this
counts what that would refuse over the passages a real run packs (the real retrieval and packing; only the token
counts come from the packaged model's vocabulary, no LLM is loaded):

- the seeds answer bench (bench/questions/seeds_qa.jsonl) over the seeds, every question;
- the dialogue sets' tuning half, the standalone form of each last turn and the earlier questions, over their
  corpora (seeds, data/sample, CMRC; the SQuAD set is English: no Chinese subject);
- the keep-right development cases in Chinese (bench/lib/keep_right_sets.py: the written stories, CMRC and DRCD
  questions with their distractors), each over its own five passages;
- with ``--report-unanswerable``: the dialogue report half's unanswerable follow-ups, in the standalone form written
  by the run (what it would catch there: seen, not tuned on).

An answerable question it refuses is a false refusal the rule would add; it ships only if there are none.

    python -m bench.subject_term_check [--report-unanswerable]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.answer.answer_pipeline import AnswerPipeline
from app.config import load_settings
from app.generation.llama_cpp_backend import LlamaCppGenerator, resolve_model
from app.wiring import assemble_pipeline
from bench.dialogue_bench import half_of, load_dialogues
from bench.keep_right_bench import build_case_retriever
from bench.lib.bench_kb import build_kb
from bench.lib.eval_data import load_questions
from bench.lib.keep_right_sets import all_cases
from bench.lib.paths import CMRC_DIR, QUESTIONS_DIR, SEEDS_DIR, SEEDS_QUESTIONS
from prompts.language import detect_language
from prompts.question_names import check_question_names, subject_terms
from prompts.templates import source_label

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"
DIALOGUE_SETS = {"seeds": SEEDS_DIR, "sample": SAMPLE_DIR, "cmrc": CMRC_DIR / "corpus.jsonl"}
DIALOGUE_FILES = {"seeds": "dialogues_seeds.jsonl", "sample": "dialogues_sample.jsonl", "cmrc": "dialogues_eval.jsonl"}


def vocab_only_generator(settings) -> LlamaCppGenerator:
    """The packaged model's tokenizer and chat template without its weights: what packing counts tokens with."""
    from llama_cpp import Llama

    folder, gguf = resolve_model(settings.generation, settings.models_path)
    path = Path(folder) / gguf
    llm = Llama(model_path=str(path), vocab_only=True, n_ctx=settings.generation.n_ctx, verbose=False)
    return LlamaCppGenerator(llm, path)


def packed_texts(pipeline: AnswerPipeline, retriever, question: str, language: str, settings) -> list[str]:
    """What the name gate reads for ``question``: the passages of the last packing stage and their labels."""
    passages = list(retriever.retrieve(question).passages)
    packed = pipeline._stages(question, passages, language, settings.generation)[-1]
    return [p.text for p in packed] + [source_label(p.passage) for p in packed]


def judge(pipeline, retriever, question: str, settings) -> tuple[list[str], list[str]]:
    """(the subject terms read, the ones the packed passages never write)."""
    language = detect_language(question, settings.answer.zh_min_cjk_share)
    terms = subject_terms(question, language)
    if not terms:
        return [], []
    texts = packed_texts(pipeline, retriever, question, language, settings)
    latin = set(check_question_names(question, language, texts, subjects=False).missing)
    missing = [n for n in check_question_names(question, language, texts).missing if n not in latin]
    return terms, missing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.subject_term_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--report-unanswerable", action="store_true")
    args = p.parse_args(argv)
    settings = load_settings()
    generator = vocab_only_generator(settings)
    # set → [questions, with a subject term, answerable refused, unanswerable refused]
    counts: dict[str, list[int]] = {}

    def run(set_name: str, pipeline, retriever, question: str, answerable: bool, label: str) -> None:
        terms, missing = judge(pipeline, retriever, question, settings)
        c = counts.setdefault(set_name, [0, 0, 0, 0])
        c[0] += 1
        c[1] += bool(terms)
        if missing:
            c[2 if answerable else 3] += 1
            kind = "FALSE REFUSAL" if answerable else "refused (unanswerable)"
            print(f"{set_name} {label} {kind}: {question} -> missing {missing}", flush=True)

    def pipeline_for(retriever, embedder) -> AnswerPipeline:
        return assemble_pipeline(retriever, generator, embedder, settings)

    retriever, embedder, _ = build_kb(settings, SEEDS_DIR, "answer-seeds")
    pipeline = pipeline_for(retriever, embedder)
    for q in load_questions(SEEDS_QUESTIONS):
        run("seeds_qa", pipeline, retriever, q.question, q.answerable, q.qid)

    for name, corpus in DIALOGUE_SETS.items():
        retriever, embedder, _ = build_kb(settings, corpus, f"answer-{name}")
        pipeline = pipeline_for(retriever, embedder)
        for d in load_dialogues(QUESTIONS_DIR / DIALOGUE_FILES[name]):
            half = half_of(d.did)
            if half == "tune":
                for turn in d.turns:  # earlier questions are answerable questions of their own
                    run(f"dialogues_{name}_tune", pipeline, retriever, turn, True, d.did + " earlier")
                run(f"dialogues_{name}_tune", pipeline, retriever, d.standalone, d.answerable, d.did)
            elif args.report_unanswerable and not d.answerable:
                run(f"dialogues_{name}_report_unanswerable", pipeline, retriever, d.standalone, False, d.did)

    cases = [c for c in all_cases() if c.language == "zh"]
    retriever = build_case_retriever(settings, all_cases())
    pipeline = pipeline_for(retriever, None)
    for case in cases:
        retriever.allowed = {p.doc_id for p in case.passages}
        run(f"keep_right_{case.source}", pipeline, retriever, case.question, case.answerable, case.case_id)

    print("\n| set | questions | with a Chinese subject term | answerable refused (false) | unanswerable refused |")
    print("|---|---|---|---|---|")
    for name, (n, with_term, false, caught) in counts.items():
        print(f"| {name} | {n} | {with_term} | {false} | {caught} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
