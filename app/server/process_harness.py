"""Runs a real server process (``python -m app.server.testing``) on 127.0.0.1 on a free port, and stops it afterwards;
the requests a hostile web page would send it, and the server's memory during an upload. The tests and the fault
matrix (bench/) both drive a server this way, so it lives beside the server, not in tests/ or bench/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# What a real client adds to an upload or a re-scan: a header a web page cannot send cross-site without asking
# (app/http_guard/loopback_guard.py refuses uploads that a page could have sent on its own).
ASKED = {"X-Requested-With": "docqa"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, args: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.base_url = f"http://127.0.0.1:{port}"
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=full_env, stdout=self._log_file,
                                        stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout} s: {self.output()}")

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def start_fake_server(env: dict[str, str], log: Path, *extra: str, timeout: float = 240) -> ServerProcess:
    port = free_port()
    server = ServerProcess(["-m", "app.server.testing", "--port", str(port), *extra], env, port, log)
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


# --- what the security tests and the fault matrix send a real server ---------------------------------------------

def attack_headers(attack: str, port: int) -> dict[str, str]:
    """What a web page's request carries in each attack: a DNS-rebinding page's Host, another site's Origin, a
    sandboxed page's ``Origin: null``, a cross-site fetch that sends no Origin."""
    return {"dns_rebinding": {"Host": f"evil.example:{port}"},
            "cross_origin": {"Origin": "http://evil.example"},
            "origin_null": {"Origin": "null"},
            "cross_site_fetch": {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}}[attack]


def hostile_requests(base_url: str, doc_id: str, headers: dict[str, str],
                     planted: tuple[str, bytes]) -> list[tuple[str, httpx.Response]]:
    """Every kind of request a page would send to read or change the base: list, status, models, retrieve, chat,
    a multipart upload planting ``planted`` (name, bytes), a text/plain re-scan, a delete of ``doc_id``."""
    chat = {"model": "docqa", "messages": [{"role": "user", "content": "备用钥匙在哪里？"}]}
    files = [("files", (planted[0], planted[1], "text/markdown"))]
    return [
        ("list documents", httpx.get(base_url + "/v1/kb/documents", headers=headers, timeout=30)),
        ("status", httpx.get(base_url + "/v1/kb/status", headers=headers, timeout=30)),
        ("models", httpx.get(base_url + "/v1/models", headers=headers, timeout=30)),
        ("retrieve", httpx.post(base_url + "/v1/kb/retrieve", json={"query": "备用钥匙"}, headers=headers,
                                timeout=30)),
        ("chat", httpx.post(base_url + "/v1/chat/completions", json=chat, headers=headers, timeout=30)),
        ("upload (multipart)", httpx.post(base_url + "/v1/kb/documents", files=files, headers=headers, timeout=30)),
        ("rescan (text/plain)", httpx.post(base_url + "/v1/kb/rescan", content=b"x", timeout=30,
                                           headers={**headers, "Content-Type": "text/plain"})),
        ("delete", httpx.delete(base_url + f"/v1/kb/documents/{doc_id}", headers=headers, timeout=30)),
    ]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (VmRSS) or its peak (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


MULTIPART_HEADERS = {"Content-Type": "multipart/form-data; boundary=B0undary", **ASKED}


def multipart_stream(name: str, size: int, pause: float = 0.0):
    """A multipart upload (send with MULTIPART_HEADERS) of ``size`` bytes of text, produced 1 MiB at a time,
    ``pause`` seconds apart: the client never holds the file in memory either."""
    yield (f'--B0undary\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
           "Content-Type: text/plain\r\n\r\n").encode()
    block = ("大文件的一行文字，用来填满上传。\n" * 40_000).encode()[: 1 << 20]
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        sent += len(piece)
        if pause:
            time.sleep(pause)
        yield piece
    yield b"\r\n--B0undary--\r\n"


def upload_memory(server: ServerProcess, size: int, name: str = "巨大.txt") -> tuple[httpx.Response, dict[str, float]]:
    """Upload ``size`` bytes to ``server`` while sampling its memory every 20 ms; the response and the figures in
    MB: RSS before and after, the highest sample, and the peak (VmHWM) before and after."""
    import threading
    pid = server.process.pid
    for _ in range(3):  # settle the allocator with a few ordinary requests first
        httpx.get(server.base_url + "/v1/kb/documents", timeout=30)
    before, peak_before = rss_kib(pid), rss_kib(pid, "VmHWM")
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        response = httpx.post(server.base_url + "/v1/kb/documents", headers=MULTIPART_HEADERS, timeout=300,
                              content=multipart_stream(name, size))
    finally:
        done.set()
        sampler.join()
    mb = 1024.0
    figures = {"rss_before": before / mb, "rss_after": rss_kib(pid) / mb, "highest": max(samples) / mb,
               "peak_before": peak_before / mb, "peak_after": rss_kib(pid, "VmHWM") / mb}
    return response, figures
