"""Development sets of issue #25 ("keep the right answers"): every case is a question over exactly five passages.

- ``distractors`` (answerable, the issue's shape "3 right passages + 2 same-topic distractors", i.e. 2 distractors
  in 5 passages): from CMRC 2018 trial and DRCD dev (Chinese) and SQuAD 2.0 dev (English). The three right
  passages are three different sentence windows of the gold paragraph, each holding the answer sentence (like three
  news items reporting the same fact with different surroundings); the two distractors are the passages of the same
  article (DRCD, SQuAD) or of the corpus (CMRC, one passage per article) that share most words with the question and
  hold no answer string. Only questions whose expected answers are short (≤ 15 characters in Chinese, ≤ 6 words in
  English) are used, so "the answer contains an expected string" measures right answers, not quoting length.
- ``near_miss`` (unanswerable): bench/lib/near_miss_sets.py's near misses (DRCD and CMRC: the question over
  same-topic passages without its answer; SQuAD 2.0's adversarial unanswerable questions), each narrowed to the five
  passages of its set that share most words with the question.
- ``written_zh`` (bench/questions/keep_right_zh.jsonl): Chinese news-style stories written for this project (made-up
  facts), whose passages often leave their own year unsaid, with questions that name the year, and the question
  shapes the issue lists ("多少人" answered "1.2万名学生", "分哪几步", "几几年", "2颗", "排放多少二氧化碳", "XX-base", lists of
  directors, "how many have answers" = total − without answers); answerable and near-miss questions.

Halves: ``half_of(case_id)`` (a hash of the id, bench/lib/near_miss_sets.py), fixed whatever is sampled: tune on
"tune", report on "report".
"""

from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from bench.lib.eval_data import Question, load_questions
from bench.lib.near_miss_sets import EVAL_DIR, EVAL_FOLDERS, Doc, half_of, load_docs, near_miss_cases
from bench.lib.paths import QUESTIONS_DIR
from ingest.store.text_tokenizer import TokenizerOptions, tokenize
from prompts.sentences import split_sentences

WRITTEN_ZH = QUESTIONS_DIR / "keep_right_zh.jsonl"
PASSAGES = 5
RIGHT_PASSAGES = 3
# Longest expected answer kept: longer CMRC spans are sentences the model paraphrases rather than quotes.
MAX_ANSWER_CHARS_ZH = 15
MAX_ANSWER_WORDS_EN = 6
# Character bigrams + English words: robust for traditional Chinese and rare names.
_OVERLAP_TOKENS = TokenizerOptions(cjk_bigrams=True, cjk_words=False)


@dataclass
class Passage:
    doc_id: str
    title: str
    text: str


@dataclass
class DevCase:
    case_id: str
    set_name: str  # "distractors", "near_miss" or "written_zh"
    source: str  # drcd, cmrc, squad, written
    answerable: bool
    language: str  # "zh" or "en"
    question: str
    answers: list[str]
    passages: list[Passage]
    half: str
    shape: str = ""  # written set: the question shape it stands for
    # "any": one expected string in the answer is right; "all": a list asked for, every item must be there.
    answer_match: str = "any"

    def is_right(self, answer: str) -> bool:
        """The answer holds the expected string (every expected item for a list question)."""
        found = [_norm_spaces(a) in _norm_spaces(answer) for a in self.answers if a]
        return bool(found) and (all(found) if self.answer_match == "all" else any(found))


def _norm_spaces(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _holds(text: str, answers: list[str]) -> bool:
    t = _norm(text)
    return any(a and _norm(a) in t for a in answers)


_TOKEN_SETS: dict[str, frozenset[str]] = {}


def _tokens(text: str) -> frozenset[str]:
    if text not in _TOKEN_SETS:
        _TOKEN_SETS[text] = frozenset(tokenize(text, _OVERLAP_TOKENS))
    return _TOKEN_SETS[text]


def _closest(question: str, docs: list[Doc], n: int) -> list[Doc]:
    """The ``n`` documents sharing most tokens with ``question`` (ties by id, so the choice is fixed)."""
    asked = _tokens(question)
    return sorted(docs, key=lambda d: (-len(asked & _tokens(d.text)), d.doc_id))[:n]


def _sample_halves(pool: list, wanted: int, rng: random.Random) -> list:
    """``wanted`` items of ``pool``, half from each half (a hash of the id decides the half, so the halves stay
    fixed; sampling each apart keeps them the same size)."""
    picked = []
    for half in ("tune", "report"):
        group = [c for c in pool if c.half == half]
        picked += rng.sample(group, min(wanted // 2, len(group)))
    return picked


def _short(q: Question, language: str) -> bool:
    if language == "zh":
        return all(len(a) <= MAX_ANSWER_CHARS_ZH for a in q.answers if a)
    return all(len(a.split()) <= MAX_ANSWER_WORDS_EN for a in q.answers if a)


def right_windows(text: str, answers: list[str]) -> list[str] | None:
    """Three different sentence windows of ``text`` that each hold the answer sentence (the whole paragraph, the
    sentence with one neighbour either side, the sentence with the two before or after it); None when the
    paragraph is too short to give three different ones or no single sentence holds an answer."""
    sentences = split_sentences(text)
    at = next((i for i, s in enumerate(sentences) if _holds(s, answers)), None)
    if at is None:
        return None
    candidates = ["".join(sentences),
                  "".join(sentences[max(0, at - 1):at + 2]),
                  "".join(sentences[max(0, at - 2):at + 1]) if at >= 2 else "".join(sentences[at:at + 3]),
                  "".join(sentences[at:at + 3]), "".join(sentences[max(0, at - 2):at + 1])]
    windows = list(dict.fromkeys(c for c in candidates if _holds(c, answers)))
    return windows[:RIGHT_PASSAGES] if len(windows) >= RIGHT_PASSAGES else None


def _article(doc: Doc) -> str:
    return doc.article


def distractor_cases(per_source: dict[str, int], seed: int = 0) -> list[DevCase]:
    """``per_source`` answerable cases from each of "cmrc", "drcd", "squad" (fewer where fewer qualify)."""
    rng = random.Random(seed)
    cases: list[DevCase] = []
    for source, wanted in per_source.items():
        folder = EVAL_DIR / EVAL_FOLDERS[source]
        docs = load_docs(folder)
        language = "en" if source == "squad" else "zh"
        articles: dict[str, list[Doc]] = {}
        for d in docs.values():
            articles.setdefault(_article(d), []).append(d)
        pool = []
        for q in load_questions(folder / "qa.jsonl"):
            if not q.answerable or not q.gold_doc_ids or q.gold_doc_ids[0] not in docs or not _short(q, language):
                continue
            gold = docs[q.gold_doc_ids[0]]
            windows = right_windows(gold.text, q.answers)
            if windows is None:
                continue
            # CMRC holds one passage per article: its same-topic distractors are the closest other passages.
            siblings = list(docs.values()) if source == "cmrc" else articles[_article(gold)]
            others = [d for d in siblings if d.doc_id != gold.doc_id and not _holds(d.text, q.answers)]
            if len(others) < PASSAGES - RIGHT_PASSAGES:
                continue
            distractors = _closest(q.question, others, PASSAGES - RIGHT_PASSAGES)
            case_id = f"dis-{q.qid}"
            passages = [Passage(f"{case_id}-r{i}", gold.title, w) for i, w in enumerate(windows)]
            passages += [Passage(f"{case_id}-d{i}", d.title, d.text) for i, d in enumerate(distractors)]
            pool.append(DevCase(case_id, "distractors", source, True, language, q.question, q.answers, passages,
                                half_of(case_id)))
        cases += _sample_halves(pool, wanted, rng)
    return cases


def near_miss_dev_cases(per_source: int, seed: int = 0) -> list[DevCase]:
    """bench/lib/near_miss_sets.py's near misses, each over the five of its passages closest to the question."""
    cases = []
    loaded = {s: load_docs(EVAL_DIR / EVAL_FOLDERS[s]) for s in EVAL_FOLDERS}
    pool = near_miss_cases(100_000, seed)
    rng = random.Random(seed)
    picked = [c for s in EVAL_FOLDERS for c in _sample_halves([c for c in pool if c.dataset == s], per_source, rng)]
    for c in picked:
        docs = [loaded[c.dataset][d] for d in c.doc_ids if d in loaded[c.dataset]]
        chosen = _closest(c.question.question, docs, PASSAGES)
        case_id = f"nm-{c.question.qid}"
        cases.append(DevCase(case_id, "near_miss", c.dataset, False, "en" if c.dataset == "squad" else "zh",
                             c.question.question, c.question.answers,
                             [Passage(f"{case_id}-p{i}", d.title, d.text) for i, d in enumerate(chosen)],
                             c.half))
    return cases


def written_cases(path: Path = WRITTEN_ZH) -> list[DevCase]:
    """The written Chinese set: stories (five passages each) with their questions."""
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        story = json.loads(line)
        passages = [Passage(f"{story['id']}-p{i}", p.get("title", ""), p["text"])
                    for i, p in enumerate(story["passages"])]
        for q in story["questions"]:
            case_id = f"{story['id']}-{q['id']}"
            cases.append(DevCase(case_id, "written_zh", "written", bool(q["answerable"]), "zh", q["question"],
                                 list(q.get("answers", [])), passages, half_of(case_id), q.get("shape", ""),
                                 q.get("answer_match", "any")))
    return cases


def all_cases(answerable_per_source: dict[str, int] | None = None, near_miss_per_source: int = 40) -> list[DevCase]:
    """Every development case; the default sizes give ≥ 100 answerable questions per language."""
    sizes = answerable_per_source or {"cmrc": 60, "drcd": 60, "squad": 120}
    return distractor_cases(sizes) + near_miss_dev_cases(near_miss_per_source) + written_cases()
