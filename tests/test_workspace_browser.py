"""The workspace pages in a real browser: the real page (``streamlit run``, its .streamlit/config.toml) with the real
embedder, stores and retrieval and the stand-in LLM of app/generation/testing.py (it quotes the best passage, cited),
driven by headless Debian Chromium through Playwright. Create a base, upload a document into it, download it back, ask it; switch the
chat to the other base and get that base's answer, and back to the first base's conversation; delete the document
and see it gone. One page session, in order, on a shared fixture; screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from app_fakes import page_env
from browser_support import CHROMIUM, CHROMIUM_ARGS, require_chromium, submit_question, wait_idle
from page_server import running_page

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
WRAPPER = Path(__file__).resolve().parent / "page_with_quoting_llm.py"
# Generous: the first question loads the embedder, and the machine's cores are shared.
WAIT_MS = 300_000
NEW_BASE = "项目乙"
UPLOAD_NAME = "青岚协议.md"
UPLOAD_TEXT = "# 青岚协议\n\n青岚协议规定每个节点每隔十三秒上报一次心跳。\n"


@pytest.fixture(scope="module")
def page(real_app_settings, tmp_path_factory):
    """The page in Chromium, served from a copy of the session's knowledge base (the default base)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("workspace_home")
    shutil.copytree(real_app_settings.kb_path, home / "kb")
    env = {**os.environ, **page_env(real_app_settings), "DOCQA_HOME": str(home)}
    with running_page(env, home / "streamlit.log", "--server.address", "127.0.0.1", script=WRAPPER) as port:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.goto(f"http://127.0.0.1:{port}")
            tab.get_by_test_id("stChatInputTextArea").wait_for(timeout=WAIT_MS)
            yield tab
            browser.close()


def _wait_idle(page, quiet_ms: int = 1500) -> None:
    wait_idle(page, WAIT_MS, quiet_ms)


def _go(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    _wait_idle(page)


def _choose_chat_base(page, name: str) -> None:
    """Make ``name`` the chat's only base (the sidebar's multiselect holds one: remove it, pick the other)."""
    choice = page.get_by_test_id("stSidebar").get_by_test_id("stMultiSelect")
    choice.locator("input").click()
    page.keyboard.press("Backspace")
    _wait_idle(page)
    page.get_by_text("请在侧栏选择至少一个知识库。").wait_for(timeout=WAIT_MS)
    choice.locator("input").click()
    page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")
    _wait_idle(page)


def _ask(page, question: str):
    """Ask ``question`` in the chat; the final assistant message."""
    reply = submit_question(page, question, WAIT_MS)
    _wait_idle(page)
    return reply


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_create_a_base_upload_into_it_and_ask_it(page, tmp_path):
    _go(page, "知识库")
    page.get_by_label("名称（字母、数字、- _ 和空格）").fill(NEW_BASE)
    page.get_by_role("button", name="新建", exact=True).click()
    page.get_by_text(f"已新建知识库「{NEW_BASE}」，并切换到它。").wait_for(timeout=WAIT_MS)
    _wait_idle(page)

    _go(page, "文档")
    assert page.get_by_role("heading", name=f"文档 · {NEW_BASE}").count()
    upload = tmp_path / UPLOAD_NAME
    upload.write_text(UPLOAD_TEXT, encoding="utf-8")
    page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="加入知识库").click()
    page.get_by_text("已收录 1 个文件").wait_for(timeout=WAIT_MS)
    _wait_idle(page)
    # The table is drawn on a canvas; the chunk view of the chosen (only) document names it.
    assert page.get_by_test_id("stExpander").filter(has_text=f"「{UPLOAD_NAME}」的段落").count() == 1
    _shot(page, "workspace_documents.png")
    with page.expect_download(timeout=WAIT_MS) as download:
        page.get_by_test_id("stDownloadButton").get_by_role("button").click()
    assert download.value.suggested_filename == UPLOAD_NAME
    assert Path(download.value.path()).read_text(encoding="utf-8") == UPLOAD_TEXT  # the original, byte for byte

    _go(page, "对话")
    reply = _ask(page, "青岚协议规定心跳间隔是多少秒？")
    assert "十三秒" in reply.locator(".docqa-answer").inner_text()
    assert UPLOAD_NAME in reply.locator(".docqa-source-title").first.inner_text()


def test_switching_bases_gives_the_other_bases_answer_and_keeps_each_conversation(page):
    _go(page, "对话")
    _choose_chat_base(page, "default")
    assert page.get_by_test_id("stChatMessage").count() == 0  # the default base's conversation: empty so far
    reply = _ask(page, "星河数据库默认监听哪个端口？")
    assert "7341" in reply.locator(".docqa-answer").inner_text()
    assert "星河数据库手册.md" in reply.locator(".docqa-source-title").first.inner_text()
    # The new base does not hold it: its answer cannot come from the manual.
    _choose_chat_base(page, NEW_BASE)
    messages = page.get_by_test_id("stChatMessage")
    assert messages.count() == 2 and "青岚协议" in messages.first.inner_text()  # its own conversation is back
    reply = _ask(page, "星河数据库默认监听哪个端口？")
    assert "7341" not in reply.inner_text() and "星河数据库手册.md" not in reply.inner_text()
    _shot(page, "workspace_switch.png")


def test_a_deleted_document_is_gone_from_the_table_and_the_next_answer(page):
    _go(page, "文档")
    page.get_by_test_id("stMultiSelect").click()
    page.get_by_role("option", name=UPLOAD_NAME).click()
    page.keyboard.press("Escape")
    _wait_idle(page)
    page.get_by_text("确认从知识库删除这 1 个文档").click()
    _wait_idle(page)
    page.get_by_role("button", name="删除", exact=True).click()
    page.get_by_text(f"已删除：{UPLOAD_NAME}").wait_for(timeout=WAIT_MS)
    page.get_by_text("这个知识库还没有文档").wait_for(timeout=WAIT_MS)
    _go(page, "对话")
    reply = _ask(page, "青岚协议规定心跳间隔是多少秒？")
    assert UPLOAD_NAME not in reply.inner_text() and "十三秒" not in reply.inner_text()
    _shot(page, "workspace_deleted.png")
