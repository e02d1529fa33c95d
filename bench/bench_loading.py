"""Load and chunk one large single-line text file (default 50 MB) and print time and peak memory.

    python bench/bench_loading.py [--mb 50] [--kind mixed|chinese|nopunct]

A 50 MB file with no line breaks is the worst case for line-based code; this checks that loading stays linear.
Writes bench/results/loading_<kind>_<mb>mb.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from app.config import load_settings
from ingest.chunking.chunker import chunk_document
from ingest.loaders.document_loader import load_document

PATTERNS = {
    "mixed": "检索增强生成先检索再回答，温度设为 0.7 时输出更多样。LoRA uses rank r = 8, e.g. on q_proj. ",
    "chinese": "大模型在推理阶段根据温度参数调整概率分布的形状，温度越低结果越确定。",
    "nopunct": "abcdefghij",
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50)
    parser.add_argument("--kind", choices=sorted(PATTERNS), default="mixed")
    args = parser.parse_args()
    settings = load_settings()
    settings.limits.max_file_mb = max(settings.limits.max_file_mb, args.mb + 1)
    unit = PATTERNS[args.kind].encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.txt"
        with open(path, "wb") as fh:
            fh.write(unit * int(args.mb * 1024 * 1024 / len(unit)))
        size_mb = path.stat().st_size / 1024 / 1024
        rss_before = peak_rss_mb()
        t0 = time.perf_counter()
        doc = load_document(path, settings.limits)
        t1 = time.perf_counter()
        chunks = chunk_document(doc, settings.chunking)
        t2 = time.perf_counter()
    result = {
        "kind": args.kind, "file_mb": round(size_mb, 1), "chars": len(doc.pages[0].text),
        "load_s": round(t1 - t0, 2), "chunk_s": round(t2 - t1, 2), "chunks": len(chunks),
        "peak_rss_mb": round(peak_rss_mb(), 0), "rss_before_mb": round(rss_before, 0),
    }
    print(json.dumps(result, ensure_ascii=False))
    out = Path(__file__).parent / "results" / f"loading_{args.kind}_{args.mb:g}mb.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
