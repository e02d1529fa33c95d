"""Load benchmark of ``python -m app.server`` (bounded; 127.0.0.1 only): many clients at once mixing questions
(streamed and not), retrieval calls and one upload, first with a fast stand-in generator, then with the packaged LLM.

Checks and figures: every request gets exactly one response (no error, no timeout, unique completion ids, the
server's served + rejected = questions sent, none stopped); a full queue answers 429 with Retry-After; retrieval
p50/p95 latency alone and under load; with the real LLM, each answer equals what ``python -m app.cli.ask --json`` gives
for the same question on the same knowledge-base generation (greedy decoding).

    python -m bench.server_load_bench --phase fake|real|both [--clients 50] [--questions 12] [--queue-size 4]
Results: bench/results/server_load_<phase>.json (write-up: bench/RESULTS_SERVER.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUESTIONS = ["贪心解码每一步选择什么样的 token？", "multilingual-e5-small 输出多少维的向量？",
             "温度在 softmax 之前对 logits 做什么？"]
RETRIEVAL_QUERIES = QUESTIONS + ["什么是文本嵌入？", "为什么要做 L2 归一化？", "LoRA 训练哪些参数？", "top-p 采样是什么？"]
UPLOAD = ("基准上传.md", "# 晨星站值班\n\n晨星站的值班表每周一早上八点更新，由站长签字后生效。\n")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, models: Path, max_new_tokens: int, queue_size: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DOCQA_HOME": str(home), "DOCQA_MODEL_CACHE_DIR": str(models),
            "DOCQA_GENERATION__MAX_NEW_TOKENS": str(max_new_tokens), "DOCQA_SERVER__QUEUE_SIZE": str(queue_size),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def build_kb(home: Path, env: dict[str, str]) -> None:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "ingest", "data/sample", "--quiet"], cwd=ROOT, env=env, check=True)


def ask_cli(question: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-m", "app.cli.ask", "--json", question], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["text"]


def current_generation(home: Path) -> str:
    return (home / "kb" / "CURRENT").read_text().strip()


def start_server(phase: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    if phase == "fake":
        args = ["-m", "app.server.testing", "--port", str(port), "--real-embedder", "--token-delay", "0.02",
                "--padding", "20"]
    else:
        args = ["-m", "app.server", "--port", str(port)]
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not start")


async def _question(client: httpx.AsyncClient, i: int, stream: bool) -> dict:
    question = QUESTIONS[i % len(QUESTIONS)]
    body = {"model": "docqa", "stream": stream, "messages": [{"role": "user", "content": question}]}
    start = time.perf_counter()
    record = {"kind": "question", "i": i, "question": question, "stream": stream}
    try:
        if stream:
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                record["status"] = response.status_code
                record["retry_after"] = response.headers.get("retry-after")
                lines = [line async for line in response.aiter_lines()]
            data = [line[6:] for line in lines if line.startswith("data: ")]
            if record["status"] == 200:
                record["done"] = bool(data) and data[-1] == "[DONE]"
                chunks = [json.loads(d) for d in data if d != "[DONE]"]
                ext = next((c["docqa"] for c in chunks if c.get("docqa")), None)
                if ext is None:  # the stream ended with an error event, or without its final chunk
                    record["error"] = f"stream without a final answer; last event: {data[-1:]!r}"
                else:
                    record.update(id=chunks[0]["id"], answer=ext["answer"], generation=ext["generation"],
                                  refused=ext["refused"])
        else:
            response = await client.post("/v1/chat/completions", json=body)
            record["status"] = response.status_code
            record["retry_after"] = response.headers.get("retry-after")
            if response.status_code == 200:
                payload = response.json()
                record.update(id=payload["id"], answer=payload["docqa"]["answer"], done=True,
                              generation=payload["docqa"]["generation"], refused=payload["docqa"]["refused"])
    except Exception as exc:  # a lost request: recorded, never hidden
        record["error"] = repr(exc)
    record["seconds"] = time.perf_counter() - start
    return record


async def _retrieval_client(client: httpx.AsyncClient, i: int, calls: int) -> list[dict]:
    records = []
    for n in range(calls):
        query = RETRIEVAL_QUERIES[(i + n) % len(RETRIEVAL_QUERIES)]
        start = time.perf_counter()
        record = {"kind": "retrieve", "i": i, "n": n}
        try:
            response = await client.post("/v1/kb/retrieve", json={"query": query})
            record["status"] = response.status_code
            record["passages"] = len(response.json().get("passages", []))
        except Exception as exc:
            record["error"] = repr(exc)
        record["seconds"] = time.perf_counter() - start
        records.append(record)
    return records


async def _upload(client: httpx.AsyncClient, delay: float) -> dict:
    await asyncio.sleep(delay)
    start = time.perf_counter()
    record = {"kind": "upload"}
    try:
        # The header a web page could not send on its own: the server refuses uploads without one.
        response = await client.post("/v1/kb/documents", headers={"X-Requested-With": "docqa"},
                                     files=[("files", (UPLOAD[0], UPLOAD[1].encode(), "text/markdown"))])
        record["status"] = response.status_code
        record["files"] = response.json().get("files")
    except Exception as exc:
        record["error"] = repr(exc)
    record["seconds"] = time.perf_counter() - start
    return record


async def idle_retrieval(base: str, calls: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        times = []
        for n in range(calls):
            start = time.perf_counter()
            (await client.post("/v1/kb/retrieve", json={"query": RETRIEVAL_QUERIES[n % len(RETRIEVAL_QUERIES)]})
             ).raise_for_status()
            times.append(time.perf_counter() - start)
        return times


async def load(base: str, clients: int, questions: int, retrieval_calls: int, upload_delay: float) -> list[dict]:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=base, timeout=1800, limits=limits) as client:
        retrievers = clients - questions - 1
        tasks = ([_question(client, i, stream=i % 2 == 1) for i in range(questions)]
                 + [_retrieval_client(client, i, retrieval_calls) for i in range(retrievers)]
                 + [_upload(client, upload_delay)])
        results = await asyncio.gather(*tasks)
    flat: list[dict] = []
    for item in results:
        flat.extend(item if isinstance(item, list) else [item])
    return flat


def run_phase(phase: str, args: argparse.Namespace) -> dict:
    home = RESULTS / f"server_home_{phase}"
    env = _env(home, Path(args.models).expanduser(), args.max_new_tokens, args.queue_size)
    build_kb(home, env)
    gen_before = current_generation(home)
    expected: dict[tuple[str, str], str] = {}
    if phase == "real":
        for q in QUESTIONS:
            expected[(gen_before, q)] = ask_cli(q, env)
    proc, base = start_server(phase, env, RESULTS / f"server_load_{phase}.log")
    try:
        idle = asyncio.run(idle_retrieval(base, args.idle_calls))
        load_avg_before = os.getloadavg()[0]
        started = time.perf_counter()
        records = asyncio.run(load(base, args.clients, args.questions, args.retrieval_calls, args.upload_delay))
        wall = time.perf_counter() - started
        load_avg_after = os.getloadavg()[0]
        stats = httpx.get(base + "/v1/kb/status", timeout=30).json()["queue"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    gen_after = current_generation(home)
    (RESULTS / f"server_load_{phase}.json").write_text(json.dumps({"records": records}, ensure_ascii=False))
    questions = [r for r in records if r["kind"] == "question"]
    answered = [r for r in questions if r.get("status") == 200 and "id" in r]
    if phase == "real" and gen_after != gen_before and any(r.get("generation") == gen_after for r in answered):
        for q in QUESTIONS:
            expected[(gen_after, q)] = ask_cli(q, env)
    retrievals = [r for r in records if r["kind"] == "retrieve"]
    under_load = [r["seconds"] for r in retrievals if r.get("status") == 200]
    compared = [r for r in answered if (r.get("generation"), r["question"]) in expected]
    same = [r for r in compared if r["answer"] == expected[(r["generation"], r["question"])]]
    summary = {
        "phase": phase, "clients": args.clients, "questions_sent": len(questions), "retrieval_calls": len(retrievals),
        "wall_s": round(wall, 1), "load_avg_1min": [round(load_avg_before, 1), round(load_avg_after, 1)],
        "errors": [r for r in records if "error" in r],
        "answered": len(answered), "answered_refused": sum(bool(r.get("refused")) for r in answered),
        "rejected_429": sum(r.get("status") == 429 for r in questions),
        "429_with_retry_after": sum(r.get("status") == 429 and bool(r.get("retry_after")) for r in questions),
        "other_statuses": sorted({r.get("status") for r in records if r.get("status") not in (200, 429)} - {None}),
        "unique_completion_ids": len({r["id"] for r in answered}) == len(answered),
        "streams_ended_with_done": all(r.get("done") for r in answered),
        "server_queue": stats,
        "server_counts_match": stats["served"] + stats["rejected"] == len(questions) and stats["stopped"] == 0,
        "retrieval_ok": sum(r.get("status") == 200 for r in retrievals),
        "retrieval_idle_ms": {"n": len(idle), "p50": round(_percentile(idle, .5) * 1000, 1),
                              "p95": round(_percentile(idle, .95) * 1000, 1)},
        "retrieval_under_load_ms": {"n": len(under_load), "p50": round(_percentile(under_load, .5) * 1000, 1),
                                    "p95": round(_percentile(under_load, .95) * 1000, 1),
                                    "max": round(max(under_load, default=float("nan")) * 1000, 1)},
        "question_seconds": {"p50": round(_percentile([r["seconds"] for r in answered], .5), 2),
                             "max": round(max((r["seconds"] for r in answered), default=float("nan")), 2)},
        "upload": next(r for r in records if r["kind"] == "upload"),
        "generations": [gen_before, gen_after],
        "answers_compared_with_app_ask": len(compared), "answers_identical": len(same),
        "differences": [{"question": r["question"], "server": r["answer"],
                         "app.cli.ask": expected[(r["generation"], r["question"])]} for r in compared if r not in same],
    }
    (RESULTS / f"server_load_{phase}.json").write_text(json.dumps({"summary": summary, "records": records},
                                                                  ensure_ascii=False, indent=1))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=["fake", "real", "both"], default="both")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=12, help="question clients among --clients")
    parser.add_argument("--retrieval-calls", type=int, default=5, help="calls per retrieval client")
    parser.add_argument("--idle-calls", type=int, default=30, help="retrieval calls before the load (baseline)")
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--upload-delay", type=float, default=1.0)
    parser.add_argument("--distinct", type=int, default=len(QUESTIONS), help="how many distinct questions to ask")
    parser.add_argument("--models", default="~/.local/share/docqa/models", help="converted-models cache")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    del QUESTIONS[args.distinct:]
    ok = True
    for phase in (["fake", "real"] if args.phase == "both" else [args.phase]):
        summary = run_phase(phase, args)
        print(json.dumps(summary, ensure_ascii=False, indent=1), flush=True)
        ok &= (not summary["errors"] and summary["server_counts_match"] and summary["unique_completion_ids"]
               and summary["rejected_429"] == summary["429_with_retry_after"] and not summary["other_statuses"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
