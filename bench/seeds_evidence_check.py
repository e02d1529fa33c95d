"""LLM-free look at the evidence check on the seeds answer bench's questions (bench/questions/seeds_qa.jsonl).

Answerable: the evidence is the window around the gold document's sentence holding an expected answer — the check
must not refuse it (a false refusal the seeds answer bench would count). Unanswerable: the window around the
seeds sentence sharing most words with the question — a refusal here is a near miss caught.

    python -m bench.seeds_evidence_check
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.config import AnswerSettings
from bench.lib.eval_data import load_questions
from bench.lib.paths import SEEDS_DIR, SEEDS_QUESTIONS
from prompts.evidence_match import coverage_tokens, match_constraints
from prompts.language import detect_language
from prompts.question_constraints import question_constraints
from prompts.sentences import split_sentences


def window(sentences: list[str], i: int, neighbours: int) -> str:
    return "".join(sentences[max(0, i - neighbours):i + neighbours + 1])


def main() -> int:
    settings = AnswerSettings()
    docs = {p.name: split_sentences(p.read_text(encoding="utf-8", errors="replace"))
            for p in sorted(Path(os.environ.get("DOCQA_SEEDS_DIR", SEEDS_DIR)).iterdir()) if p.is_file()}
    refused = {True: [], False: []}
    for q in load_questions(SEEDS_QUESTIONS):
        lang = detect_language(q.question, settings.zh_min_cjk_share)
        q_tokens = coverage_tokens(q.question)
        best = (-1, "", "", "")
        for name, sentences in docs.items():
            if q.answerable and name not in q.gold_doc_ids:
                continue
            for i, s in enumerate(sentences):
                holds = any(a.lower() in s.lower() for a in q.answers if a) if q.answerable else True
                score = len(q_tokens & coverage_tokens(s)) + (1000 if holds else 0)
                if score > best[0]:
                    best = (score, name, window(sentences, i, settings.evidence_neighbours), "".join(sentences))
        match = match_constraints(question_constraints(q.question, lang), best[1] + "\n" + best[2],
                                  frozenset(settings.evidence_checks), settings.min_question_coverage,
                                  settings.min_coverage_tokens, best[1] + "\n" + best[3])
        refused[q.answerable].append(not match.matches)
        if not match.matches:
            print(f"{q.qid} ({'answerable' if q.answerable else 'unanswerable'}): {q.question} -> {match.missing}")
    print(f"answerable refused (false refusals added): {sum(refused[True])}/{len(refused[True])}; "
          f"unanswerable refused: {sum(refused[False])}/{len(refused[False])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
