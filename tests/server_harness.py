"""Runs a real server process on 127.0.0.1 on a free port for a test, and stops it afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


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
