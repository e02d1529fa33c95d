"""The real web page in a real browser: ``streamlit run app/web/chat_page.py`` on a free localhost port, driven by
headless Debian Chromium through Playwright. Ask a question and watch the answer stream in with its source; upload
a document full of hostile markup and check none of it runs or loads. Saves a screenshot to test-artifacts/."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest
from app_fakes import page_env
from browser_support import CHROMIUM, CHROMIUM_ARGS, require_chromium, submit_question, wait_idle
from page_server import running_page

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
# Generous: the first page load loads the models, and the machine's 2 cores are shared.
WAIT_MS = 600_000
HOSTILE_DOC = (
    "# 月影协议\n\n月影协议规定每个节点每隔九秒发送一次心跳。"
    "<script>window.__pwned = 1</script>"
    "<img src=http://127.0.0.1:9/pixel.png onerror=\"window.__pwned = 2\">"
    " ![x](http://127.0.0.1:9/image.png) [点我](javascript:window.__pwned=3) www.example.com\n")


@pytest.fixture(scope="module")
def server(real_app_settings, real_pipeline, tmp_path_factory):
    """The page served from a copy of the session's knowledge base (the upload below must not change it)."""
    require_chromium()
    home = tmp_path_factory.mktemp("browser_home")
    shutil.copytree(real_app_settings.kb_path, home / "kb")
    env = {**os.environ, **page_env(real_app_settings), "DOCQA_HOME": str(home)}
    with running_page(env, home / "streamlit.log", "--server.address", "127.0.0.1") as port:
        yield f"http://127.0.0.1:{port}", home


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url)
        page.get_by_test_id("stChatInputTextArea").wait_for(timeout=WAIT_MS)
        yield page, requests
        browser.close()


def _wait_idle(page, quiet_ms: int = 1500) -> None:
    wait_idle(page, WAIT_MS, quiet_ms)


def _ask_and_watch(page, question: str) -> list[str]:
    """Submit ``question``; return the successive texts of the new assistant message until the answer is final."""
    replies = page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stChatMessageAvatarAssistant"))
    _wait_idle(page)
    before = replies.count()
    reply = submit_question(page, question, WAIT_MS)
    answer = reply.locator(".docqa-answer")
    seen: list[str] = []
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if answer.count():
            text = answer.first.inner_text()
            if not seen or seen[-1] != text:
                seen.append(text)
            if "▌" not in text and reply.locator(".docqa-source-title").count():
                _wait_idle(page)
                assert replies.count() == before + 1, "expected exactly one new answer"
                return seen
        page.wait_for_timeout(100)
    raise TimeoutError(f"no final answer; saw {seen[-3:]}")


def test_a_question_streams_an_answer_with_its_source(browser_page):
    page, _ = browser_page
    seen = _ask_and_watch(page, "星河数据库默认监听哪个端口？")
    assert any(s.endswith("▌") for s in seen[:-1]), seen  # partial answers were shown while generating
    assert "7341" in seen[-1]
    message = page.get_by_test_id("stChatMessage").last
    assert "星河数据库手册.md" in message.locator(".docqa-source-title").first.inner_text()
    assert "7341" in message.locator("mark").first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_answer.png"), full_page=True)


def test_a_follow_up_is_answered_in_the_conversation_context(browser_page):
    page, _ = browser_page
    page.get_by_role("button", name="新对话").click()
    _wait_idle(page)
    _ask_and_watch(page, "星河数据库默认监听哪个端口？")
    # "它" is the database named only by the first question: the page passes the conversation and the follow-up is
    # answered from the backup passage (when the rewrite guard keeps the local LLM's standalone question, the page
    # also shows it as "检索问题：…").
    seen = _ask_and_watch(page, "它每天几点自动备份？")
    message = page.get_by_test_id("stChatMessage").last
    if message.get_by_text("检索问题：").count():
        assert "备份" in message.get_by_text("检索问题：").inner_text()
    assert "星河数据库手册.md" in message.locator(".docqa-source-title").first.inner_text()
    assert "两点" in seen[-1] or "2" in seen[-1], seen[-1]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_follow_up.png"), full_page=True)


def test_an_uploaded_hostile_document_is_ingested_and_rendered_inert(server, browser_page, tmp_path):
    url, _ = server
    page, requests = browser_page
    upload = tmp_path / "月影协议.md"
    upload.write_text(HOSTILE_DOC, encoding="utf-8")
    page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="加入知识库").click()
    page.get_by_text("已收录 1 个文件").wait_for(timeout=WAIT_MS)
    metrics = page.get_by_test_id("stMetricValue")
    assert metrics.first.inner_text() == "3"  # documents in the knowledge base

    _ask_and_watch(page, "月影协议规定心跳间隔是多少秒？")
    message = page.get_by_test_id("stChatMessage").last
    sources = message.text_content()  # includes a collapsed "closest passages" expander, if it refused
    assert "月影协议.md" in sources
    assert "<script>window.__pwned = 1</script>" in sources  # shown as text ...
    assert "![x](http://127.0.0.1:9/image.png)" in sources
    assert page.evaluate("window.__pwned") is None  # ... and never run
    assert message.locator("script, img, iframe").count() == 0
    # The only links are the page's own "open in the original" buttons to its source page.
    links = message.locator("a")
    assert all(links.nth(i).evaluate("a => a.href").startswith(f"{url}/source?") for i in range(links.count()))
    assert not [r for r in requests if "127.0.0.1:9" in r]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_upload_hostile.png"), full_page=True)


# An uploaded PDF's fact, printed on its second page at a known place (pdf_bytes: line k at baseline 720 - 14k pt
# on a 792 pt page), so the highlight's position on the page image can be checked.
PDF_PAGES = [["Port Alder harbour handbook."],
             ["Opening hours of the harbour.", "Visitors sign in at the harbour office.",
              "The Heron Gate of Port Alder closes at 21:40 every evening.", "Boats may moor overnight."]]
PDF_CITED_LINE = 2
# The highlight's outline colour (app/sources/highlight.OUTLINE_RGBA), give or take the browser's image scaling.
OUTLINE_RGB, COLOUR_TOLERANCE = (230, 120, 0), 40


def test_a_citation_opens_the_pdf_page_with_the_cited_line_highlighted(server, browser_page, tmp_path):
    import numpy as np
    from PIL import Image

    from ingest.testing.documents import pdf_bytes

    url, _ = server
    page, _ = browser_page
    upload = tmp_path / "port_alder.pdf"
    upload.write_bytes(pdf_bytes(PDF_PAGES))
    page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="加入知识库").click()
    page.get_by_text("已收录 1 个文件").wait_for(timeout=WAIT_MS)
    _wait_idle(page)
    page.get_by_role("button", name="新对话").click()
    _ask_and_watch(page, "When does the Heron Gate of Port Alder close?")
    message = page.get_by_test_id("stChatMessage").last
    assert "21:40" in message.locator(".docqa-answer").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_cited_answer.png"), full_page=True)
    # The PDF's source card's link: the one naming the uploaded file's content (doc = its sha256 prefix).
    doc = hashlib.sha256(upload.read_bytes()).hexdigest()[:16]
    link = message.locator(f"a[href*='doc={doc}']").first
    assert "Open in the original" in link.inner_text()
    assert link.evaluate("a => a.href").startswith(f"{url}/source?")
    with page.context.expect_page(timeout=WAIT_MS) as opened:
        link.click()
    source = opened.value
    image = source.get_by_test_id("stImage").locator("img")
    image.wait_for(timeout=WAIT_MS)
    source.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert "port_alder.pdf" in source.locator(".docqa-source-title").inner_text()
    shot = ARTIFACTS / "browser_cited_page.png"
    box = image.bounding_box()
    source.screenshot(path=str(shot), full_page=True)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    near_outline = (np.abs(pixels - OUTLINE_RGB) <= COLOUR_TOLERANCE).all(axis=2)
    ys, xs = np.nonzero(near_outline)
    assert len(ys) > 100, "no highlight drawn"
    # Every highlight pixel lies inside the page image, around the cited line.
    assert xs.min() >= box["x"] and xs.max() <= box["x"] + box["width"]
    assert ys.min() >= box["y"] and ys.max() <= box["y"] + box["height"]
    baseline = box["y"] + box["height"] * (792 - (720 - 14 * PDF_CITED_LINE)) / 792
    line_height = box["height"] * 14 / 792
    assert baseline - 2 * line_height < ys.mean() < baseline + line_height
    source.close()
