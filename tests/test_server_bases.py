"""Several knowledge bases over HTTP, through a real server process on 127.0.0.1 (app/server/process_harness.py)
with real FAISS and BM25 bases on disk: the hash embedder and a generator that quotes passage [1] stand in for the
models (the answer's wording does not matter here, which document it cites does).

Create a base, upload into it, ask it by ``model: docqa/NAME``, delete the document and see the next answer not
cite it; two bases fused with each source naming its base; a damaged base listed with its problem while the others
answer; names the registry refuses; the loopback guard and the API key on the new routes."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from app_fakes import write_corpus

from app.config import Settings, base_registry, settings_for_base
from app.server.process_harness import ASKED, attack_headers, start_fake_server
from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
from ingest.testing.fake_embedder import FakeEmbedder

WORK = {"aurora-notes.txt": "Aurora is a small scheduling service. It retries a failed job three times, "
                            "waiting thirty seconds between attempts.\n"}
HOME = {"garden.txt": "The garden pump waters the roses for twenty minutes every morning.\n"}
LAVA = ("熔岩协议.md", "# 熔岩协议\n\n熔岩协议的握手超时是 42 秒。\n")


def _env(home: Path, **extra: str) -> dict[str, str]:
    # The hash embedder's cosines are low: the evidence gate is opened so the fake generator gets to answer.
    return {"DOCQA_HOME": str(home), "DOCQA_ANSWER__MIN_EVIDENCE_SCORE": "0", "DOCQA_CONFIG": "", **extra}


def _home(tmp: Path) -> Path:
    home = tmp / "home"
    settings = Settings(data_dir=home)
    run_ingest(settings, [write_corpus(home / "docs")], IngestOptions(), embedder_factory=FakeEmbedder)
    for name, files in (("work", WORK), ("home", HOME)):
        base_registry(settings).create(name)
        run_ingest(settings_for_base(settings, name), [write_corpus(tmp / f"src-{name}", files)], IngestOptions(),
                   embedder_factory=FakeEmbedder)
    return home


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bases")
    home = _home(tmp)
    proc = start_fake_server(_env(home), tmp / "server.log")
    proc.home = home
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log.read_text(encoding="utf-8", errors="replace")


def _ask(server, model: str, question: str, **fields) -> httpx.Response:
    return httpx.post(server.base_url + "/v1/chat/completions", timeout=60,
                      json={"model": model, "messages": [{"role": "user", "content": question}], **fields})


def _cited(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(s["base"], Path(s["file"]).name) for s in response.json()["docqa"]["sources"]]


def test_create_upload_ask_delete_and_the_next_answer_does_not_cite_it(server):
    url = server.base_url
    created = httpx.post(url + "/v1/bases", json={"name": "项目 A"}, timeout=30)
    assert created.status_code == 201 and created.json()["model"] == "docqa/项目 A", created.text
    assert httpx.post(url + "/v1/bases", json={"name": "项目 a"}, timeout=30).status_code == 409  # taken
    models = [m["id"] for m in httpx.get(url + "/v1/models").json()["data"]]
    assert {"docqa/项目 A", "docqa/work", "docqa/home", "docqa/default"} <= set(models)

    uploaded = httpx.post(url + "/v1/bases/项目 A/documents", headers=ASKED, timeout=60,
                          files=[("files", (LAVA[0], LAVA[1].encode(), "text/markdown")),
                                 ("files", ("备注.md", "# 备注\n\n项目 A 的负责人是林工。\n".encode(), "text/markdown"))])
    assert uploaded.status_code == 200 and uploaded.json()["report"]["documents_total"] == 2, uploaded.text
    docs = {d["name"]: d for d in httpx.get(url + "/v1/bases/项目 A/documents").json()["documents"]}
    assert docs[LAVA[0]]["uploaded"] and docs[LAVA[0]]["chunks"] >= 1
    chunks = httpx.get(url + f"/v1/bases/项目 A/documents/{docs[LAVA[0]]['id']}/chunks").json()["chunks"]
    assert "42 秒" in "".join(c["text"] for c in chunks) and chunks[0]["heading"] == ["熔岩协议"]
    original = httpx.get(url + f"/v1/bases/项目 A/documents/{docs[LAVA[0]]['id']}/original")
    assert original.content == LAVA[1].encode() and original.headers["content-type"] == "application/octet-stream"
    assert original.headers["content-disposition"].startswith("attachment;")

    question = "熔岩协议的握手超时是多少秒？"
    assert _cited(_ask(server, "docqa/项目 A", question)) == [("项目 A", LAVA[0])]
    # The server's own base does not hold it.
    assert LAVA[0] not in [f for _, f in _cited(_ask(server, "docqa", question))]

    deleted = httpx.delete(url + f"/v1/bases/项目 A/documents/{docs[LAVA[0]]['id']}", timeout=60)
    assert deleted.status_code == 200 and deleted.json()["report"]["documents_total"] == 1, deleted.text
    after = _ask(server, "docqa/项目 A", question)
    assert LAVA[0] not in [f for _, f in _cited(after)] and "42" not in after.json()["docqa"]["answer"]
    again = httpx.delete(url + f"/v1/bases/项目 A/documents/{docs[LAVA[0]]['id']}", timeout=60)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    # The last document: an empty but valid base, listed with no documents.
    last = httpx.post(url + "/v1/bases/项目 A/documents/delete", json={"ids": [docs["备注.md"]["id"]]}, timeout=60)
    assert last.status_code == 200 and last.json()["report"]["documents_total"] == 0, last.text
    listed = {b["name"]: b for b in httpx.get(url + "/v1/bases").json()["bases"]}
    assert listed["项目 A"]["documents"] == 0 and listed["项目 A"]["problem"] == ""

    renamed = httpx.patch(url + "/v1/bases/项目 A", json={"name": "项目 B"}, timeout=30)
    assert renamed.status_code == 200 and renamed.json()["name"] == "项目 B", renamed.text
    unconfirmed = httpx.request("DELETE", url + "/v1/bases/项目 B", json={"confirm": "项目 A"}, timeout=30)
    assert unconfirmed.status_code == 400 and unconfirmed.json()["error"]["code"] == "confirmation_required"
    gone = httpx.request("DELETE", url + "/v1/bases/项目 B", json={"confirm": "项目 B"}, timeout=30)
    assert gone.status_code == 200, gone.text
    unknown = _ask(server, "docqa/项目 B", question)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert "no knowledge base named '项目 B'" in unknown.json()["error"]["message"]


def test_two_bases_are_fused_and_each_source_names_its_base(server):
    work = _ask(server, "docqa/work+home", "How many times does Aurora retry a failed job?")
    home = _ask(server, "docqa/work+home", "How long does the garden pump water the roses?")
    assert _cited(work) == [("work", "aurora-notes.txt")] and _cited(home) == [("home", "garden.txt")]
    assert home.json()["docqa"]["bases"] == ["work", "home"] and home.json()["docqa"]["notices"] == []
    text = home.json()["choices"][0]["message"]["content"]
    assert "[1] home · garden.txt" in text
    # The same through the bases field, and retrieval over both shows passages of each, named.
    same = _ask(server, "docqa", "How long does the garden pump water the roses?", bases=["home", "work"])
    assert _cited(same) == [("home", "garden.txt")]
    hits = httpx.post(server.base_url + "/v1/kb/retrieve", json={"query": "Aurora garden pump", "bases":
                                                                 ["work", "home"]}, timeout=30).json()
    assert {(p["base"], Path(p["chunk"]["source"]).name) for p in hits["passages"]} == {
        ("work", "aurora-notes.txt"), ("home", "garden.txt")}
    one = httpx.post(server.base_url + "/v1/bases/home/retrieve", json={"query": "pump"}, timeout=30).json()
    assert {p["base"] for p in one["passages"]} == {"home"}


def test_a_damaged_base_is_listed_with_its_problem_and_the_others_answer(server, tmp_path):
    registry = base_registry(Settings(data_dir=server.home))
    base = registry.create("broken")
    shutil.copytree(registry.get("work").kb_dir, base.kb_dir, dirs_exist_ok=True)
    (base.folder / "base.json").write_text("{garbage", encoding="utf-8")
    try:
        listed = {b["name"]: b for b in httpx.get(server.base_url + "/v1/bases").json()["bases"]}
        assert "knowledge base damaged" in listed["?broken"]["problem"] and listed["?broken"]["model"] is None
        assert listed["work"]["problem"] == "" and listed["work"]["documents"] == 1
        assert "docqa/?broken" not in [m["id"] for m in httpx.get(server.base_url + "/v1/models").json()["data"]]
        answer = _ask(server, "docqa/work+broken", "How many times does Aurora retry a failed job?")
        assert _cited(answer) == [("work", "aurora-notes.txt")]
        notices = answer.json()["docqa"]["notices"]
        assert len(notices) == 1 and notices[0].startswith("knowledge base 'broken' left out:")
        alone = _ask(server, "docqa/broken", "How many times does Aurora retry a failed job?")
        assert alone.status_code == 503 and "knowledge base damaged" in alone.json()["error"]["message"]
        documents = httpx.get(server.base_url + "/v1/bases/broken/documents")
        assert documents.status_code == 503 and documents.json()["error"]["code"] == "base_damaged"
    finally:
        shutil.rmtree(base.folder)


@pytest.mark.parametrize("name, problem", [
    ("a/b", "may use only letters"), ("a\\\\b", "may use only letters"), ("..", "may use only letters"),
    ("a.b", "may use only letters"), ("con:", "may use only letters"), ("a\u0007b", "control"),
    ("a\u202eb", "control"), ("x" * 300, "300 characters long"), ("  ", "cannot be empty")])
def test_bad_base_names_are_refused_with_the_registrys_line(server, name, problem):
    before = sorted(p.name for p in (server.home / "bases").iterdir())
    response = httpx.post(server.base_url + "/v1/bases", json={"name": name}, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_base_name"
    assert problem in response.json()["error"]["message"]
    assert sorted(p.name for p in (server.home / "bases").iterdir()) == before


def test_the_default_base_and_bad_requests_are_refused_clearly(server):
    url = server.base_url
    refused = httpx.request("DELETE", url + "/v1/bases/default", json={"confirm": "default"}, timeout=30)
    assert refused.status_code == 409
    assert httpx.patch(url + "/v1/bases/nosuch", json={"name": "x"}).status_code == 404
    assert httpx.get(url + "/v1/bases/nosuch/documents").json()["error"]["code"] == "base_not_found"
    assert httpx.get(url + "/v1/bases/work/documents/0123456789abcdef/original").status_code == 404
    assert _ask(server, "gpt-4o", "hi").json()["error"]["code"] == "model_not_found"


def _hostile(url: str, headers: dict[str, str]) -> list[tuple[str, httpx.Response]]:
    return [
        ("list bases", httpx.get(url + "/v1/bases", headers=headers, timeout=30)),
        ("create base", httpx.post(url + "/v1/bases", json={"name": "planted"}, headers=headers, timeout=30)),
        ("rename base", httpx.patch(url + "/v1/bases/work", json={"name": "x"}, headers=headers, timeout=30)),
        ("delete base", httpx.request("DELETE", url + "/v1/bases/work", json={"confirm": "work"}, headers=headers,
                                      timeout=30)),
        ("documents", httpx.get(url + "/v1/bases/work/documents", headers=headers, timeout=30)),
        ("upload", httpx.post(url + "/v1/bases/work/documents", headers=headers, timeout=30,
                              files=[("files", ("planted.md", b"# planted\n", "text/markdown"))])),
        ("delete several", httpx.post(url + "/v1/bases/work/documents/delete", json={"ids": ["x"]},
                                      headers=headers, timeout=30)),
        ("original", httpx.get(url + "/v1/bases/work/documents/x/original", headers=headers, timeout=30)),
        ("chunks", httpx.get(url + "/v1/bases/work/documents/x/chunks", headers=headers, timeout=30)),
        ("reindex", httpx.post(url + "/v1/bases/work/documents/x/reindex", headers=headers, timeout=30)),
        ("ask a base", httpx.post(url + "/v1/chat/completions", headers=headers, timeout=30, json={
            "model": "docqa/work", "messages": [{"role": "user", "content": "Aurora?"}]})),
    ]


@pytest.mark.parametrize("attack", ["dns_rebinding", "cross_origin", "origin_null", "cross_site_fetch"])
def test_a_web_page_can_neither_read_nor_change_the_bases(server, attack):
    before = httpx.get(server.base_url + "/v1/bases").json()
    for what, response in _hostile(server.base_url, attack_headers(attack, server.port)):
        assert response.status_code == 403, (what, response.status_code, response.text)
        assert response.json()["error"]["code"] in ("host_not_allowed", "origin_not_allowed"), what
        assert "Aurora" not in response.text and "aurora" not in response.text, what
    assert httpx.get(server.base_url + "/v1/bases").json() == before


def test_every_new_route_needs_the_key_once_one_is_configured(tmp_path):
    key = "another-s3cret-key-0123456789abcdef"
    home = _home(tmp_path)
    server = start_fake_server(_env(home, DOCQA_SERVER__API_KEY=key), tmp_path / "server.log")
    try:
        before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
        for what, response in _hostile(server.base_url, {"Authorization": "Bearer wrong", **ASKED}):
            assert response.status_code == 401, (what, response.status_code, response.text)
        assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == before
        ok = httpx.get(server.base_url + "/v1/bases", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and [b["name"] for b in ok.json()["bases"]] == ["default", "home", "work"]
    finally:
        server.stop()
    assert key not in server.log.read_text()
