"""Loading a benchmark corpus (JSONL or a folder of files) and question set (qa.jsonl format)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# The published eval sets and seed documents lie beside the repository (../shared), as in CI.


@dataclass
class Question:
    qid: str
    question: str
    answers: list[str]
    gold_doc_ids: list[str]
    answerable: bool = True
    lang: str = ""
    gold_keywords: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    """Files to ingest and the document id each file stands for."""

    folder: Path
    doc_id_of_file: dict[str, str]  # file name -> doc id
    texts: dict[str, str]  # doc id -> full text (for the LangChain baseline)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-blank line of a JSONL file; a line that is not JSON is a clear error."""
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not a JSON record: {exc}") from exc


def _safe_name(doc_id: str) -> str:
    return re.sub(r"[^\w.-]", "_", doc_id) + ".txt"


def corpus_subset(corpus: Path, required: set[str], size: int, seed: int = 0) -> set[str]:
    """Doc ids of a JSONL corpus to keep: every ``required`` one, plus random others up to ``size`` in all."""
    with corpus.open(encoding="utf-8") as fh:
        all_ids = [str(json.loads(line)["doc_id"]) for line in fh if line.strip()]
    others = [d for d in all_ids if d not in required]
    extra = random.Random(seed).sample(others, max(0, min(len(others), size - len(required))))
    return (required & set(all_ids)) | set(extra)


def materialise_corpus(corpus: Path, work_dir: Path, only: set[str] | None = None) -> Corpus:
    """A folder is used as is (doc id = file name); a JSONL of {doc_id,title,text} becomes one .txt per doc
    (only the docs in ``only`` when given)."""
    if corpus.is_dir():
        files = sorted(p for p in corpus.iterdir() if p.is_file())
        return Corpus(corpus, {p.name: p.name for p in files},
                      {p.name: p.read_text(encoding="utf-8", errors="replace") for p in files})
    folder = work_dir / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    mapping: dict[str, str] = {}
    texts: dict[str, str] = {}
    for line_no, record in read_jsonl(corpus):
        try:
            doc_id, text = str(record["doc_id"]), str(record["text"])
        except KeyError as exc:
            raise ValueError(f"{corpus}:{line_no}: not a {{doc_id, title, text}} record: {exc}") from exc
        if only is not None and doc_id not in only:
            continue
        title = str(record.get("title", "")).strip()
        full = f"{title}\n\n{text}" if title else text
        name = _safe_name(doc_id)
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != full:
            path.write_text(full, encoding="utf-8")
        mapping[name] = doc_id
        texts[doc_id] = full
    for stale in folder.iterdir():
        if stale.name not in mapping:  # from an earlier run with another selection
            stale.unlink()
    return Corpus(folder, mapping, texts)


def load_questions(path: Path, limit: int | None = None, sample: int | None = None,
                   seed: int = 0) -> list[Question]:
    """Questions from a qa.jsonl; ``sample`` draws that many at random (fixed seed), ``limit`` keeps the first."""
    questions = []
    for line_no, r in read_jsonl(path):
        try:
            if not str(r["question"]).strip():
                continue  # a few published records have an empty question
            questions.append(Question(
                qid=str(r.get("qid", line_no)), question=r["question"], answers=list(r.get("answers", [])),
                gold_doc_ids=[str(d) for d in r.get("gold_doc_ids", [])],
                answerable=bool(r.get("answerable", True)), lang=r.get("lang", ""),
                gold_keywords=list(r.get("gold_keywords", []))))
        except KeyError as exc:
            raise ValueError(f"{path}:{line_no}: not a question record: {exc}") from exc
    if sample is not None and sample < len(questions):
        questions = random.Random(seed).sample(questions, sample)
    if limit is not None:
        questions = questions[:limit]
    return questions
