"""What the real-browser tests share: Debian's Chromium (never a downloaded browser) and its flags, waiting for the
page script to finish a run, and asking the chat."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk")


def wait_idle(page, wait_ms: int, quiet_ms: int = 1500) -> None:
    """Wait (up to ``wait_ms``) until the page script has stopped running for ``quiet_ms``. While it runs (e.g.
    reloading the pipeline after an upload), Streamlit shows the previous run's elements as stale and may drop them
    from the page, so counting messages then gives a wrong count."""
    running = page.get_by_test_id("stStatusWidgetRunningIcon")
    deadline = time.monotonic() + wait_ms / 1000
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if running.count():
            quiet_since = time.monotonic()
        elif (time.monotonic() - quiet_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(100)
    raise TimeoutError("the page script never stopped running")


def submit_question(page, question: str, wait_ms: int):
    """Type ``question`` into the chat and send it; the new assistant message once it appears (still streaming)."""
    replies = page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stChatMessageAvatarAssistant"))
    before = replies.count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    reply = replies.nth(before)
    reply.wait_for(timeout=wait_ms)
    return reply
