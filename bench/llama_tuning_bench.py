"""llama.cpp runtime settings measured on this machine: prompt evaluation time of a grounded-answer-sized prompt and
decoding speed, for each combination of threads, batch size and flash attention (GenerationSettings fields).

Each variant loads the packaged GGUF in turn and evaluates the same prompt ``--repeats`` times from an empty
context (interleaved over the variants so a busy machine slows all alike); reported: median prompt-evaluation ms
per token and decoding tokens/s, with the load average.

    .venv/bin/python -m bench.llama_tuning_bench --prompt-tokens 400 --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time

from app.config import load_settings
from app.generation.base import resolve_model

TEXT = ("长城是中国古代的军事防御工程，修建于多个朝代。明长城东起山海关，西至嘉峪关，全长约八千八百公里。"
        "The Great Wall was built over many dynasties to defend the northern frontier. ")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.llama_tuning_bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompt-tokens", type=int, default=400)
    p.add_argument("--decode-tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1])
    p.add_argument("--batch", type=int, nargs="+", default=[128, 512])
    p.add_argument("--flash-attn", choices=["on", "off", "both"], default="both")
    args = p.parse_args(argv)
    from llama_cpp import Llama

    settings = load_settings()
    folder, gguf = resolve_model(settings.generation, settings.models_path)
    path = os.path.join(folder, gguf) if gguf else folder
    flash = {"on": [True], "off": [False], "both": [False, True]}[args.flash_attn]
    variants = list(itertools.product(args.threads, args.batch, flash))
    models = {}
    for threads, batch, fa in variants:
        models[(threads, batch, fa)] = Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                                             n_batch=batch, n_ubatch=batch, flash_attn=fa, verbose=False)
    any_model = next(iter(models.values()))
    tokens = any_model.tokenize((TEXT * 50).encode("utf-8"), add_bos=False)[:args.prompt_tokens]
    prompt_ms: dict[tuple, list[float]] = {v: [] for v in variants}
    decode_tps: dict[tuple, list[float]] = {v: [] for v in variants}
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        for variant, llm in models.items():
            llm.reset()
            started = time.perf_counter()
            llm.eval(tokens)
            prompt_ms[variant].append((time.perf_counter() - started) * 1000 / len(tokens))
            started = time.perf_counter()
            for _ in range(args.decode_tokens):
                llm.eval([llm.sample(temp=0.0)])
            decode_tps[variant].append(args.decode_tokens / (time.perf_counter() - started))
    print(f"\n{len(tokens)}-token prompt, {args.repeats} repeats, load average {load:.2f} → "
          f"{os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)\n")
    print("| n_threads | n_batch=n_ubatch | flash_attn | prompt ms/token (median) | decode tokens/s (median) |")
    print("|---:|---:|---|---:|---:|")
    for variant in variants:
        threads, batch, fa = variant
        print(f"| {threads} | {batch} | {fa} | {statistics.median(prompt_ms[variant]):.2f} | "
              f"{statistics.median(decode_tps[variant]):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
