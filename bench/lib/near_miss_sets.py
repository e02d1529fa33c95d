"""Near-miss and noisy answerable question sets built from ../shared/eval (DRCD, CMRC 2018 trial, SQuAD 2.0 dev b).

- near miss, DRCD (traditional Chinese): a question asked over its article's *other* paragraphs, those holding an
  answer string dropped: on-topic passages without the answer.
- near miss, CMRC 2018 trial (simplified Chinese): the gold passage left out, the rest of the corpus kept (passages
  holding an answer string dropped).
- near miss, SQuAD 2.0 (English): the real unanswerable questions, over all paragraphs of their article.
- noisy answerable (DRCD, SQuAD answerable): the gold paragraph plus ``k`` sibling paragraphs of the same article
  (noise ratio k/(k+1) by paragraphs).
Each case says which documents its small knowledge base holds. Questions are split into a tuning half and a report
half by a hash of their id, so the halves stay fixed whatever is sampled.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

from bench.lib.eval_data import Question, load_questions, read_jsonl
from bench.lib.paths import EVAL_DIR as DEFAULT_EVAL_DIR

# ../shared/eval beside the repository; DOCQA_EVAL_DIR points elsewhere (a worktree lies one level deeper).
EVAL_DIR = Path(os.environ.get("DOCQA_EVAL_DIR", DEFAULT_EVAL_DIR))
# The eval sets by short name, as folders of EVAL_DIR.
EVAL_FOLDERS = {"drcd": "drcd_dev", "cmrc": "cmrc2018_trial", "squad": "squad2_dev_b"}


@dataclass
class Case:
    kind: str  # "near_miss" or "noisy"
    dataset: str  # drcd, cmrc, squad
    question: Question
    doc_ids: list[str]  # the documents of its knowledge base
    half: str  # "tune" or "report"
    noise: float = 0.0


@dataclass
class Doc:
    doc_id: str
    title: str
    text: str

    @property
    def article(self) -> str:
        """drcd-1147-5 → drcd-1147; squad-8_0 → squad-8; a CMRC passage is its own article."""
        if self.doc_id.startswith("drcd-"):
            return self.doc_id.rsplit("-", 1)[0]
        if self.doc_id.startswith("squad-"):
            return self.doc_id.rsplit("_", 1)[0]
        return self.doc_id


def half_of(qid: str) -> str:
    return "tune" if int(hashlib.sha1(qid.encode()).hexdigest(), 16) % 2 == 0 else "report"


def load_docs(dataset_dir: Path) -> dict[str, Doc]:
    return {str(r["doc_id"]): Doc(str(r["doc_id"]), str(r.get("title", "")), str(r["text"]))
            for _, r in read_jsonl(dataset_dir / "corpus.jsonl")}


def _holds_answer(doc: Doc, q: Question) -> bool:
    return any(a and a in doc.text for a in q.answers)


def _by_article(docs: dict[str, Doc]) -> dict[str, list[Doc]]:
    articles: dict[str, list[Doc]] = {}
    for doc in docs.values():
        articles.setdefault(doc.article, []).append(doc)
    return articles


def near_miss_cases(per_dataset: int, seed: int = 0) -> list[Case]:
    """``per_dataset`` near-miss questions from each of DRCD, CMRC and SQuAD (fewer where fewer qualify)."""
    rng = random.Random(seed)
    cases: list[Case] = []
    drcd = load_docs(EVAL_DIR / "drcd_dev")
    articles = _by_article(drcd)
    pool = []
    for q in load_questions(EVAL_DIR / "drcd_dev" / "qa.jsonl"):
        gold = drcd.get(q.gold_doc_ids[0]) if q.gold_doc_ids else None
        if gold is None:
            continue
        others = [d.doc_id for d in articles[gold.article] if d.doc_id not in q.gold_doc_ids
                  and not _holds_answer(d, q)]
        if len(others) >= 2:
            pool.append(Case("near_miss", "drcd", q, others, half_of(q.qid)))
    cases += rng.sample(pool, min(per_dataset, len(pool)))
    cmrc = load_docs(EVAL_DIR / "cmrc2018_trial")
    pool = []
    for q in load_questions(EVAL_DIR / "cmrc2018_trial" / "qa.jsonl"):
        others = [d.doc_id for d in cmrc.values() if d.doc_id not in q.gold_doc_ids and not _holds_answer(d, q)]
        pool.append(Case("near_miss", "cmrc", q, others, half_of(q.qid)))
    cases += rng.sample(pool, min(per_dataset, len(pool)))
    squad = load_docs(EVAL_DIR / "squad2_dev_b")
    articles = _by_article(squad)
    pool = []
    for q in load_questions(EVAL_DIR / "squad2_dev_b" / "qa.jsonl"):
        if q.answerable:
            continue
        # unanswerable questions carry no gold; their article comes from the topical paragraph's id
        topical = _topical_of(q)
        if not topical or topical not in squad:
            continue
        pool.append(Case("near_miss", "squad", q, [d.doc_id for d in articles[squad[topical].article]],
                         half_of(q.qid)))
    cases += rng.sample(pool, min(per_dataset, len(pool)))
    return cases


_TOPICAL: dict[str, str] = {}


def _topical_of(q: Question) -> str:
    if not _TOPICAL:
        for _, r in read_jsonl(EVAL_DIR / "squad2_dev_b" / "qa.jsonl"):
            if r.get("topical_doc_ids"):
                _TOPICAL[str(r["qid"])] = str(r["topical_doc_ids"][0])
    return _TOPICAL.get(q.qid, "")


def noisy_cases(per_dataset: int, siblings: int, seed: int = 0) -> list[Case]:
    """Answerable DRCD and SQuAD questions over their gold paragraph plus ``siblings`` paragraphs of its article
    that hold no answer string."""
    rng = random.Random(seed + siblings)
    cases: list[Case] = []
    for dataset, folder in (("drcd", "drcd_dev"), ("squad", "squad2_dev_b")):
        docs = load_docs(EVAL_DIR / folder)
        articles = _by_article(docs)
        pool = []
        for q in load_questions(EVAL_DIR / folder / "qa.jsonl"):
            if not q.answerable or not q.gold_doc_ids or q.gold_doc_ids[0] not in docs:
                continue
            gold = docs[q.gold_doc_ids[0]]
            others = [d.doc_id for d in articles[gold.article] if d.doc_id != gold.doc_id and not _holds_answer(d, q)]
            if len(others) >= siblings:
                chosen = random.Random(q.qid).sample(others, siblings)
                pool.append(Case("noisy", dataset, q, [gold.doc_id] + chosen, half_of(q.qid),
                                 noise=siblings / (siblings + 1)))
        cases += rng.sample(pool, min(per_dataset, len(pool)))
    return cases
