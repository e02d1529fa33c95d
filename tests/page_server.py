"""Runs the real chat page (``streamlit run app/web/chat_page.py`` from the project folder, so its
``.streamlit/config.toml`` applies) on a free port for a test, and stops it afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from app.server.process_harness import free_port

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def running_page(env: dict[str, str], log: Path, *extra: str, timeout: float = 120,
                 script: Path = REPO / "app" / "web" / "chat_page.py") -> Iterator[int]:
    """The page's port once ``/_stcore/health`` answers; ``extra`` are more ``streamlit run`` options, ``script``
    the script to run (a test wrapper of the page)."""
    port = free_port()
    with open(log, "w") as out:
        page = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script),
                                 "--server.headless", "true", "--server.port", str(port),
                                 "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *extra],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if page.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {page.returncode}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the page was not healthy after {timeout} s")
                time.sleep(0.3)
            yield port
        finally:
            page.terminate()
            try:
                page.wait(timeout=20)
            except subprocess.TimeoutExpired:
                page.kill()
                page.wait()
