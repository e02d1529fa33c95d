"""Small knowledge-base corpora and the settings file that chunks them finely: many short, distinct passages from a
few files, for tests and benchmarks of the ingest and store machinery (crash, lock, fault injection)."""

from __future__ import annotations

from pathlib import Path

# Distinct little topics so each file chunks into a few passages of its own.
TOPICS = ["量化", "蒸馏", "剪枝", "检索", "排序", "分词", "注意力", "位置编码", "微调", "对齐", "推理", "缓存",
          "批处理", "并行", "采样", "评测", "幻觉", "提示词", "向量", "索引"]


def write_corpus(folder: Path, n_files: int, paragraphs: int = 3, tag: str = "") -> list[Path]:
    """``n_files`` small Chinese text files with distinct content (a few chunks each with small chunk sizes)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        topic = TOPICS[i % len(TOPICS)]
        body = "\n\n".join(
            f"第{p + 1}节：关于{topic}{i}{tag}的说明。{topic}{i}是本文件第{p + 1}段讨论的主题，"
            f"它与编号{i * 100 + p}的实验有关，结论记录在这里以便检索。" for p in range(paragraphs))
        path = folder / f"doc_{i:03d}.txt"
        path.write_text(f"{topic}{i}{tag}\n\n{body}\n", encoding="utf-8")
        paths.append(path)
    return paths


def write_config(path: Path, batch_size: int = 4, keep_generations: int = 2, gc_grace_seconds: float = 60.0) -> Path:
    """A TOML settings file with small chunks and small embedding calls (fine-grained resumes)."""
    path.write_text("[chunking]\nchunk_size = 80\nchunk_overlap = 10\nmin_chunk_chars = 10\n"
                    f"[embedder]\nbatch_size = {batch_size}\npassages_per_call = {batch_size}\n"
                    f"[index]\nkeep_generations = {keep_generations}\ngc_grace_seconds = {gc_grace_seconds}\n",
                    encoding="utf-8")
    return path
