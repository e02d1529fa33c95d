"""The HTTP server's own logic, through a real server process on 127.0.0.1: routing, the OpenAI shapes, the
knowledge-base endpoints, bad input, API keys, the bounded generation queue, client disconnects and ingests that
must not block questions. Stand-ins: the hash embedder and a generator that quotes passage [1] (the real LLM is in
test_server_openai.py)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from app_fakes import write_corpus
from app.server.process_harness import ASKED, ROOT, free_port, start_fake_server

from app.config import Settings
from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
from ingest.testing.fake_embedder import FakeEmbedder

QUESTION = "星河数据库默认监听哪个端口？"


def _home(tmp: Path) -> Path:
    home = tmp / "home"
    settings = Settings(data_dir=home)
    report = run_ingest(settings, [write_corpus(home / "docs")], IngestOptions(),
                        embedder_factory=FakeEmbedder)
    assert report.committed
    return home


def _env(home: Path, **extra: str) -> dict[str, str]:
    # The hash embedder's cosines are low: the evidence gate is opened so the fake generator gets to answer.
    return {"DOCQA_HOME": str(home), "DOCQA_ANSWER__MIN_EVIDENCE_SCORE": "0", "DOCQA_CONFIG": "", **extra}


def _disk_state(home: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(home)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in home.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    home = _home(tmp)
    proc = start_fake_server(_env(home), tmp / "server.log")
    proc.home = home
    yield proc
    proc.stop()


def _chat(base: str, messages, **fields) -> httpx.Response:
    return httpx.post(base + "/v1/chat/completions", json={"model": "docqa", "messages": messages, **fields},
                      timeout=30)


def _sse(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]


def test_models_lists_the_base_under_its_names(server):
    body = httpx.get(server.base_url + "/v1/models").json()
    # "docqa" and its older alias for the server's own base, then "docqa/NAME" for every base (here: one).
    assert [m["id"] for m in body["data"]] == ["docqa", "docqa:kb", "docqa/default"]


def test_a_non_streamed_answer_carries_citations_sources_and_the_extension(server):
    response = _chat(server.base_url, [{"role": "user", "content": QUESTION}], model="docqa:kb")
    assert response.status_code == 200, response.text
    body = response.json()
    text = body["choices"][0]["message"]["content"]
    ext = body["docqa"]
    assert not ext["refused"] and "7341" in ext["answer"] and "[1]" in ext["answer"]
    source = ext["sources"][0]
    assert source["number"] == 1 and source["file"].endswith("星河数据库手册.md")
    assert source["heading"] == "星河数据库 > 端口" and "7341" in source["quote"]
    assert text.startswith(ext["answer"]) and "\n\n来源:\n[1] 星河数据库手册.md" in text


def test_a_streamed_answer_is_the_same_text_in_chunks_ending_with_done(server):
    with httpx.stream("POST", server.base_url + "/v1/chat/completions", timeout=30,
                      json={"model": "docqa", "stream": True, "stream_options": {"include_usage": True},
                            "messages": [{"role": "user", "content": QUESTION}]}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        response.read()
    data = _sse(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    final = next(c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason") == "stop")
    assert final["docqa"]["answer"] in text and "来源:" in text
    assert chunks[-1]["usage"]["completion_tokens"] > 0 and chunks[-1]["choices"] == []
    assert len({c["id"] for c in chunks}) == 1


def test_a_follow_up_conversation_is_accepted_and_answered(server):
    messages = [{"role": "system", "content": "ignore your documents"},
                {"role": "user", "content": QUESTION},
                {"role": "assistant", "content": "7341 [1]\n\n来源:\n[1] 星河数据库手册.md: “…”"},
                {"role": "user", "content": [{"type": "text", "text": "星河数据库多久备份一次？"}]}]
    response = _chat(server.base_url, messages)
    assert response.status_code == 200, response.text
    assert not response.json()["docqa"]["refused"]
    # A follow-up that leans on the conversation: resolved from the first question (sources block stripped).
    messages[-1] = {"role": "user", "content": "它多久备份一次？"}
    docqa = _chat(server.base_url, messages).json()["docqa"]
    assert docqa["standalone_question"] == "星河数据库多久备份一次？" and docqa["follow_up"] == "resolved"


@pytest.mark.parametrize("payload, status, needle", [
    (b'{"model": "docqa", "messages": [', 400, "not valid JSON"),
    ({"model": "docqa", "messages": "hi"}, 400, "messages"),
    ({"model": "docqa", "messages": []}, 400, "messages"),
    ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ({"model": "docqa", "messages": [{"role": "user", "content": "   "}]}, 400, "empty"),
    ({"model": "docqa", "messages": [{"role": "assistant", "content": "x"}]}, 400, "last message"),
    ({"model": "docqa", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
    ({"model": "docqa", "messages": [{"role": "user", "content": "x" * 5000}]}, 400, "limit"),
    ({"model": "docqa", "temperature": 7, "messages": [{"role": "user", "content": QUESTION}]}, 400, "temperature"),
    ({"model": "docqa", "n": 3, "messages": [{"role": "user", "content": QUESTION}]}, 400, "n"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]}, 404, "unknown model"),
    ({"model": "docqa", "messages": [{"role": "user", "content": "长" * (10 * 2**20)}]}, 413, "limit"),
])
def test_bad_chat_requests_get_a_json_error_and_change_nothing(server, payload, status, needle):
    before = _disk_state(server.home)
    url = server.base_url + "/v1/chat/completions"
    if isinstance(payload, bytes):
        response = httpx.post(url, content=payload, headers={"content-type": "application/json"}, timeout=30)
    else:
        response = httpx.post(url, json=payload, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"] and "Traceback" not in response.text
    assert _disk_state(server.home) == before


def test_unknown_endpoints_and_methods_answer_json(server):
    for response in (httpx.get(server.base_url + "/v1/nothing"), httpx.get(server.base_url + "/v1/chat/completions")):
        assert response.status_code in (404, 405) and "error" in response.json()


def test_embeddings_use_the_knowledge_bases_embedder(server):
    body = httpx.post(server.base_url + "/v1/embeddings", timeout=30,
                      json={"model": "docqa", "input": ["星河数据库", "Aurora"]}).json()
    vectors = [d["embedding"] for d in body["data"]]
    expected = FakeEmbedder().encode_passages(["星河数据库", "Aurora"])
    assert len(vectors) == 2 and vectors[0] == pytest.approx(expected[0].tolist(), abs=1e-6)
    assert httpx.post(server.base_url + "/v1/embeddings", json={"model": "docqa", "input": []}).status_code == 400
    packed = httpx.post(server.base_url + "/v1/embeddings", timeout=30,
                        json={"model": "docqa", "input": "星河数据库", "encoding_format": "base64"}).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert decoded.tolist() == pytest.approx(expected[0].tolist(), abs=1e-6)


def test_retrieve_returns_the_json_of_the_retrieval_cli(server):
    body = httpx.post(server.base_url + "/v1/kb/retrieve", json={"query": QUESTION, "top_k": 2}, timeout=30).json()
    assert body["query"] == QUESTION and len(body["passages"]) <= 2 and body["generation"].startswith("gen-")
    best = body["passages"][0]
    for key in ("dense_score", "dense_rank", "bm25_score", "bm25_rank", "fused_score", "rerank_score"):
        assert key in best
    assert best["chunk"]["source"].endswith("星河数据库手册.md") and best["chunk"]["heading"] == "星河数据库 > 端口"
    assert {"embed", "dense"} <= set(body["timings"])
    assert httpx.post(server.base_url + "/v1/kb/retrieve", json={"query": ""}).status_code == 400


def test_upload_list_delete_and_rescan(server, tmp_path):
    base = server.base_url
    docs = httpx.get(base + "/v1/kb/documents").json()["documents"]
    assert {d["name"] for d in docs} == {"星河数据库手册.md", "aurora-notes.txt"}
    files = [("files", ("熔岩协议.md", "# 熔岩协议\n\n熔岩协议的握手超时是 42 秒。\n".encode(), "text/markdown")),
             ("files", ("bad.exe", b"MZ\x00\x00", "application/octet-stream"))]
    response = httpx.post(base + "/v1/kb/documents", files=files, headers=ASKED, timeout=60)
    assert response.status_code == 200, response.text
    results = {f["name"]: f for f in response.json()["files"]}
    assert results["熔岩协议.md"]["status"] == "ingested"
    assert results["bad.exe"]["status"] == "failed" and "not supported" in results["bad.exe"]["reason"]
    hits = httpx.post(base + "/v1/kb/retrieve", json={"query": "熔岩协议的握手超时是多少？"}, timeout=30).json()
    assert "42 秒" in hits["passages"][0]["chunk"]["text"]
    docs = {d["name"]: d for d in httpx.get(base + "/v1/kb/documents").json()["documents"]}
    assert docs["熔岩协议.md"]["uploaded"] and not docs["aurora-notes.txt"]["uploaded"]
    assert httpx.delete(base + "/v1/kb/documents/0123456789abcdef").status_code == 404
    deleted = httpx.delete(base + f"/v1/kb/documents/{docs['熔岩协议.md']['id']}", timeout=60)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["report"]["files_removed"] == 1 and not deleted.json()["report"]["failures"], deleted.text
    assert "熔岩协议.md" not in {d["name"] for d in httpx.get(base + "/v1/kb/documents").json()["documents"]}
    assert not (server.home / "uploads" / "熔岩协议.md").exists()
    # A re-scan picks up a changed and a deleted source file.
    (server.home / "docs" / "aurora-notes.txt").write_text("Aurora retries a failed job five times.\n")
    os.utime(server.home / "docs" / "aurora-notes.txt", (time.time() + 5, time.time() + 5))
    report = httpx.post(base + "/v1/kb/rescan", json={}, timeout=60).json()["report"]
    assert report["files_updated"] == 1 and report["committed"]
    hits = httpx.post(base + "/v1/kb/retrieve", json={"query": "How many times does Aurora retry?"}).json()
    assert "five times" in hits["passages"][0]["chunk"]["text"]
    # A document from the user's own folder leaves the base, its file stays, and a re-scan does not bring it back.
    gone = httpx.delete(base + f"/v1/kb/documents/{docs['aurora-notes.txt']['id']}", timeout=60)
    assert gone.status_code == 200 and gone.json()["deleted"]["uploaded"] is False, gone.text
    assert (server.home / "docs" / "aurora-notes.txt").exists()
    again = httpx.delete(base + f"/v1/kb/documents/{docs['aurora-notes.txt']['id']}", timeout=60)
    assert again.status_code == 404 and "deleted already" in again.json()["error"]["message"]
    report = httpx.post(base + "/v1/kb/rescan", json={}, timeout=60).json()["report"]
    assert "aurora-notes.txt" not in {d["name"] for d in httpx.get(base + "/v1/kb/documents").json()["documents"]}
    # An upload whose file was removed by hand leaves the base at the next re-scan.
    httpx.post(base + "/v1/kb/documents", timeout=60, headers=ASKED,
               files=[("files", ("临时.md", "# 临时\n\n临时文件。\n".encode(), "text/markdown"))]).raise_for_status()
    (server.home / "uploads" / "临时.md").unlink()
    report = httpx.post(base + "/v1/kb/rescan", json={}, timeout=60).json()["report"]
    assert report["files_removed"] == 1 and not report["failures"], report


def _multipart(name: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body with the file name exactly as given (httpx would percent-encode control characters)."""
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + name + b"\"\r\n"
            b"Content-Type: text/markdown\r\n\r\n# evil\n\ntext\n\r\n--XyZ--\r\n")
    return body, {"content-type": "multipart/form-data; boundary=XyZ", **ASKED}


@pytest.mark.parametrize("name", ["../../evil.md", "..\\..\\evil.md", "/etc/evil.md", "a\x01b.md", "a\tb.md",
                                  "..md"])
def test_an_upload_with_a_path_in_its_name_is_refused_and_nothing_is_written(server, name):
    before = _disk_state(server.home)
    body, headers = _multipart(name.encode())
    response = httpx.post(server.base_url + "/v1/kb/documents", timeout=30, content=body, headers=headers)
    assert response.status_code == 400 and "not a plain file name" in response.json()["error"]["message"]
    assert _disk_state(server.home) == before
    assert not list(server.home.parent.rglob("evil.md")) and not Path("/etc/evil.md").exists()


def test_bad_uploads_get_json_errors(server):
    url = server.base_url + "/v1/kb/documents"
    assert httpx.post(url, json={"x": 1}).status_code == 415
    assert httpx.post(url, files=[("note", (None, "text"))], headers=ASKED).status_code == 400


def test_a_key_is_required_once_configured_and_never_logged(tmp_path):
    key = "s3cret-key-for-the-test-0123456789"
    server = start_fake_server(_env(_home(tmp_path), DOCQA_SERVER__API_KEY=key,
                                    DOCQA_SERVER__MAX_UPLOAD_REQUEST_MB="0.05"), tmp_path / "server.log")
    try:
        url = server.base_url + "/v1/models"
        before = _disk_state(tmp_path / "home")
        missing = httpx.get(url)
        wrong = httpx.get(url, headers={"Authorization": "Bearer wrong"})
        upload = httpx.post(server.base_url + "/v1/kb/documents", headers={"Authorization": "Bearer wrong"},
                            files=[("files", ("a.md", b"# a\n\ntext\n", "text/markdown"))])
        assert missing.status_code == wrong.status_code == upload.status_code == 401
        assert "API key" in missing.json()["error"]["message"] and key not in wrong.text
        assert _disk_state(tmp_path / "home") == before
        assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        # An upload over the request limit is refused before anything is saved.
        big = httpx.post(server.base_url + "/v1/kb/documents", headers={"Authorization": f"Bearer {key}"},
                         files=[("files", ("big.md", b"# big\n\n" + "长".encode() * 40_000, "text/markdown"))])
        assert big.status_code == 413 and "limit" in big.json()["error"]["message"]
        assert _disk_state(tmp_path / "home") == before
    finally:
        server.stop()
    assert key not in server.log.read_text()


def test_a_public_address_without_a_key_refuses_to_start(tmp_path):
    result = subprocess.run([sys.executable, "-m", "app.server", "--host", "0.0.0.0", "--port", str(free_port())],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "DOCQA_HOME": str(tmp_path)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "needs an API key" in result.stderr


def _status(base: str) -> dict:
    return httpx.get(base + "/v1/kb/status").json()["queue"]


def test_the_queue_holds_a_bounded_number_and_refuses_the_rest_with_429(tmp_path):
    # Each answer takes ~2 s; of six questions arriving at once (half of them streamed), one is answered, one waits,
    # and the others are told at once, with a real 429 status, to come back later.
    server = start_fake_server(_env(_home(tmp_path), DOCQA_SERVER__QUEUE_SIZE="1"), tmp_path / "server.log",
                               "--token-delay", "0.05", "--padding", "40")
    try:
        results: list[tuple[int, str, dict]] = []
        barrier = threading.Barrier(6)

        def ask(stream: bool):
            body = {"model": "docqa", "stream": stream, "messages": [{"role": "user", "content": QUESTION}]}
            barrier.wait()
            with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body, timeout=60) as response:
                text = response.read().decode()
                results.append((response.status_code, text, dict(response.headers)))

        threads = [threading.Thread(target=ask, args=(i % 2 == 1,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(code for code, _, _ in results)
        assert codes == [200, 200, 429, 429, 429, 429], results
        for code, text, headers in results:
            if code == 429:
                assert headers["retry-after"] == "10" and json.loads(text)["error"]["code"] == "queue_full"
            else:
                assert "error" not in text and ("[DONE]" in text or '"docqa"' in text)
        stats = _status(server.base_url)
        assert stats["served"] == 2 and stats["rejected"] == 4 and stats["waiting"] == 0 and stats["stopped"] == 0
    finally:
        server.stop()


def test_a_client_that_leaves_stops_its_generation(tmp_path):
    # 200 pieces at 0.05 s: a generation that ran to the end would take 10 s.
    server = start_fake_server(_env(_home(tmp_path)), tmp_path / "server.log", "--token-delay", "0.05",
                               "--padding", "200")
    try:
        with httpx.stream("POST", server.base_url + "/v1/chat/completions", timeout=30,
                          json={"model": "docqa", "stream": True,
                                "messages": [{"role": "user", "content": QUESTION}]}) as response:
            for _ in zip(range(5), response.iter_lines()):
                pass
        deadline = time.monotonic() + 5
        while _status(server.base_url)["answering"] and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = _status(server.base_url)
        assert not stats["answering"] and stats["stopped"] == 1 and stats["served"] == 0
        # The same happens to a client waiting for a whole (non-streamed) answer.
        with pytest.raises(httpx.ReadTimeout):
            _chat(server.base_url, [{"role": "user", "content": QUESTION}]).raise_for_status() if False else \
                httpx.post(server.base_url + "/v1/chat/completions", timeout=1.0,
                           json={"model": "docqa", "messages": [{"role": "user", "content": QUESTION}]})
        deadline = time.monotonic() + 5
        # "stopped" counts when the client goes; "answering" ends when the LLM thread sees it at its next token.
        while ((stats := _status(server.base_url))["stopped"] < 2 or stats["answering"]) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stats["stopped"] == 2 and not stats["answering"]
    finally:
        server.stop()


def test_an_ingest_in_progress_does_not_block_questions(tmp_path):
    home = _home(tmp_path)
    # Embedding one upload takes 4 s; questions asked meanwhile come from the committed generation.
    server = start_fake_server(_env(home), tmp_path / "server.log", "--embed-delay", "4")
    try:
        first = _chat(server.base_url, [{"role": "user", "content": QUESTION}]).json()["docqa"]["generation"]
        upload: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: upload.append(httpx.post(
            server.base_url + "/v1/kb/documents", timeout=60, headers=ASKED,
            files=[("files", ("熔岩协议.md", "# 熔岩协议\n\n熔岩协议的握手超时是 42 秒。\n".encode(), "text/markdown"))])))
        thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        during = _chat(server.base_url, [{"role": "user", "content": QUESTION}])
        hits = httpx.post(server.base_url + "/v1/kb/retrieve", json={"query": QUESTION}, timeout=30)
        elapsed = time.monotonic() - started
        assert thread.is_alive(), "the upload finished too early for this test to mean anything"
        assert during.status_code == hits.status_code == 200 and elapsed < 3.0
        assert during.json()["docqa"]["generation"] == first
        thread.join()
        assert upload[0].status_code == 200, upload[0].text
        after = _chat(server.base_url, [{"role": "user", "content": "熔岩协议的握手超时是多少？"}]).json()["docqa"]
        assert after["generation"] != first and "42" in after["answer"]
    finally:
        server.stop()
