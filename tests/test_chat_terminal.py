"""``python -m app.cli.chat`` driven through a pseudo-terminal (pexpect): a question, a follow-up answered in the
conversation's context, /sources, /new, line editing, Ctrl-D. The fast test runs the real terminal loop over the
fake pipeline (tests/chat_driver.py); the slow one runs the real process with the packaged models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


def _spawn(args: list[str], env: dict[str, str] | None = None) -> pexpect.spawn:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "dumb", **(env or {})}
    return pexpect.spawn(sys.executable, args, cwd=str(ROOT), env=environment, encoding="utf-8",
                         timeout=TIMEOUT, dimensions=(40, 200))


def test_the_terminal_chat_answers_a_follow_up_in_context_and_starts_over_on_new():
    child = _spawn([str(ROOT / "tests" / "chat_driver.py")])
    child.expect_exact("docqa> ")
    child.sendline("青鸾评测集里有多少道拒答题？")
    child.expect_exact("37 道拒答题 [1]")
    child.expect_exact("docqa> ")
    child.sendline("那其中有多少道题是有答案的？")
    child.expect_exact("375道有答案 [1]")
    child.expect_exact("(searched for: 青鸾评测集中有多少道题是有答案的？)")
    child.expect_exact("docqa> ")
    child.sendline("/sources")
    child.expect_exact("[1] docs/青鸾评测集.md")
    child.expect_exact("其中37道是拒答题")
    child.expect_exact("docqa> ")
    child.sendline("/new")
    child.expect_exact("(new conversation)")
    child.expect_exact("docqa> ")
    # Line editing (readline): type, move left over two characters, insert, then Enter.
    child.send("那其中有多少道题是答案的？")
    child.send("\x1b[D\x1b[D\x1b[D\x1b[D")  # four times cursor-left: before 答案的？
    child.send("有\r")
    child.expect_exact("375道有答案 [1]")
    child.expect_exact("docqa> ")
    child.sendeof()  # Ctrl-D quits
    child.expect(pexpect.EOF)
    transcript = child.before
    child.close()
    assert child.exitstatus == 0
    # After /new the same follow-up is a first message: retrieved as typed (edited), never rewritten.
    line = transcript.split("RETRIEVED:")[1].strip().splitlines()[0]
    assert line.split(" | ") == ["青鸾评测集里有多少道拒答题？", "青鸾评测集中有多少道题是有答案的？",
                                 "那其中有多少道题是有答案的？", "那其中有多少道题是有答案的？"]


@pytest.mark.slow
def test_the_real_terminal_chat_with_the_packaged_models(real_app_settings, real_pipeline):
    from app_fakes import page_env

    child = _spawn(["-m", "app.cli.chat"], page_env(real_app_settings))
    child.timeout = 1500  # the real LLM on a shared 2-core CPU
    child.expect_exact("docqa> ")
    child.sendline("星河数据库默认监听哪个端口？")
    child.expect_exact("7341")
    child.expect_exact("docqa> ")
    child.sendline("它每天几点自动备份？")
    # Answered from the backup passage although the message names no subject: "它" is resolved from the first
    # question's subject (the same standalone question as through the HTTP API, tests/test_server_openai.py).
    child.expect(r"两点|2点|2:00|凌晨")
    child.expect_exact("(searched for: 星河数据库每天几点自动备份？)")
    child.expect_exact("docqa> ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
