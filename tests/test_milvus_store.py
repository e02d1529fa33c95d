"""The knowledge base on Milvus, against real Milvus Lite: a local file in this process, and Milvus Lite's own gRPC
server started here on 127.0.0.1 (the network path a cluster is reached by).

The same ingest into the FAISS folder store and into Milvus must give the same documents, chunks and dense top-5;
the fused top-5 may differ where the keyword scores do (Milvus's BM25 with its jieba analyzer vs docqa's bm25s with
rjieba words and CJK bigrams; README "Knowledge base on Milvus"), so it is compared by overlap and best source.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ingest.testing.fake_embedder import FakeEmbedder
from app.server.process_harness import ROOT, free_port, start_fake_server
from store_fakes import fake_cli

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from app.config import Settings  # noqa: E402
from app.wiring import build_retriever, knowledge_store, run_ingest  # noqa: E402
from ingest.pipeline.ingest_pipeline import IngestOptions  # noqa: E402
from ingest.store.kb_lock import WriterLock  # noqa: E402
from ingest.store.knowledge_base import KnowledgeBaseError  # noqa: E402
from ingest.store.milvus.milvus_store import MilvusStore  # noqa: E402

SAMPLE = ROOT / "data" / "sample"
QUESTIONS = ["LoRA 微调的秩怎么选", "top_p 和 temperature 的作用", "向量检索的索引类型", "分词器 BPE",
             "检索增强生成的流程", "什么是 IVF 索引"]
EMBEDDER = FakeEmbedder(64, features="tokens")
# The embedder tests/ingest_with_fake_embedder.py and tests/server_launcher.py use.
LAUNCHED_EMBEDDER = FakeEmbedder()


def _settings(home: Path, backend: str, **store: str) -> Settings:
    settings = Settings(data_dir=home)
    settings.store = settings.store.replace(backend=backend, **store)
    settings.index.keep_generations = 1  # one old generation for open readers; older ones go at once
    settings.index.gc_grace_seconds = 0
    return settings


def _ingest(settings: Settings, folder: Path, embedder: FakeEmbedder = EMBEDDER):
    report = run_ingest(settings, [folder], IngestOptions(), embedder_factory=lambda: embedder)
    assert report.committed or report.generation, report.summary()
    return report


def _documents(settings: Settings) -> list[tuple]:
    _, docs = knowledge_store(settings).live_documents()
    return [(Path(d.path).name, d.content_hash, d.n_chunks, d.title) for d in docs]


def _chunk_texts(settings: Settings, n: int) -> dict[int, str]:
    with knowledge_store(settings).open(EMBEDDER.name, EMBEDDER.dimension) as kb:
        return {c.chunk_id: c.text for c in kb.get_chunks(range(1, n + 200))}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    """The sample corpus (a copy the tests change) ingested into a folder store and a Milvus Lite file."""
    root = tmp_path_factory.mktemp("milvus_pair")
    corpus = root / "corpus"
    shutil.copytree(SAMPLE, corpus)
    folder, milvus = _settings(root / "folder", "folder"), _settings(root / "milvus", "milvus")
    for settings in (folder, milvus):
        _ingest(settings, corpus)
    return corpus, folder, milvus


def test_same_documents_chunks_and_top5_as_the_folder_store(pair) -> None:
    _, folder, milvus = pair
    assert _documents(milvus) == _documents(folder)
    info = knowledge_store(milvus).live_info()
    assert info.backend == "milvus" and info.n_chunks == knowledge_store(folder).live_info().n_chunks
    assert _chunk_texts(milvus, info.n_chunks) == _chunk_texts(folder, info.n_chunks)
    by_folder, by_milvus = build_retriever(folder, EMBEDDER), build_retriever(milvus, EMBEDDER)
    for question in QUESTIONS:
        vector = EMBEDDER.encode_queries([question])[0]
        dense_f, dense_m = by_folder.kb.dense_search(vector, 5), by_milvus.kb.dense_search(vector, 5)
        assert [i for i, _ in dense_m] == [i for i, _ in dense_f], question
        assert [round(s, 4) for _, s in dense_m] == [round(s, 4) for _, s in dense_f]
        assert by_milvus.kb.keyword_search(question, 5), question  # Milvus's own BM25 finds the words
        top_f = by_folder.retrieve(question, top_k=5).passages
        top_m = by_milvus.retrieve(question, top_k=5).passages
        assert top_m[0].chunk.source == top_f[0].chunk.source, question
        overlap = {p.chunk.chunk_id for p in top_m} & {p.chunk.chunk_id for p in top_f}
        assert len(overlap) >= 3, (question, [p.chunk.chunk_id for p in top_f], [p.chunk.chunk_id for p in top_m])


def test_incremental_add_change_delete_match_the_folder_store(pair) -> None:
    corpus, folder, milvus = pair
    before = knowledge_store(milvus).open(EMBEDDER.name, EMBEDDER.dimension)
    old_documents = before.documents()
    (corpus / "new_note.md").write_text("# 新笔记\n\n知识库可以放在 Milvus 集合里，多台机器共用同一份索引。\n",
                                        encoding="utf-8")
    changed = corpus / "rag_notes.md"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\n## 补充\n\n重排序之后再合并相邻段落。\n",
                       encoding="utf-8")
    (corpus / "vector_search_faq.txt").unlink()
    for settings in (folder, milvus):
        report = _ingest(settings, corpus)
        assert (report.files_added, report.files_updated, report.files_removed) == (1, 1, 1)
    assert report.chunks_removed
    assert _documents(milvus) == _documents(folder)
    info = knowledge_store(milvus).live_info()
    assert info.generation == "gen-000002"
    assert _chunk_texts(milvus, info.n_chunks + 50) == _chunk_texts(folder, info.n_chunks + 50)
    # A snapshot opened before the ingest still reads its own generation, whole.
    assert before.documents() == old_documents
    assert any(c.source.endswith("vector_search_faq.txt") for c in before.get_chunks(range(1, 60)))
    after = build_retriever(milvus, EMBEDDER)
    assert all(not p.chunk.source.endswith("vector_search_faq.txt")
               for p in after.retrieve("向量检索的索引类型", top_k=10).passages)
    assert after.retrieve("多台机器共用同一份索引", top_k=1).passages[0].chunk.source.endswith("new_note.md")
    # keep_generations = 1: the rows generation 2 removed stay for readers of generation 1.
    assert _stored_rows(milvus) == info.n_chunks + report.chunks_removed


def _stored_rows(settings: Settings) -> int:
    store = knowledge_store(settings)
    return len(store.client.query(store.names.chunks(1), filter="chunk_id >= 0", output_fields=["chunk_id"],
                                  limit=10_000))


def test_deleting_one_document_is_one_writer_operation_on_either_store(pair) -> None:
    """What a per-document delete does: remove the document, drop the chunks no document holds, commit."""
    _, folder, milvus = pair
    for settings in (folder, milvus):
        store = knowledge_store(settings)
        victim = store.live_documents()[1][0]
        with WriterLock(settings.kb_path):
            writer = store.start_writer(EMBEDDER.name, EMBEDDER.dimension)
            writer.remove_document(victim.path)
            removed = writer.remove_orphan_contents()
            info = writer.commit()
            store.collect_garbage()
        assert removed and victim.path not in {d.path for d in store.live_documents()[1]}
        assert info.n_documents == len(store.live_documents()[1])
    assert _documents(milvus) == _documents(folder)
    # Generation 1 is collected now: what generation 2 removed is deleted; what 3 removed stays for readers of 2.
    assert _stored_rows(milvus) == info.n_chunks + len(removed)


def test_the_page_and_the_langchain_tool_work_on_a_milvus_base(pair, monkeypatch) -> None:
    import streamlit as st
    from answer_fakes import ScriptedGenerator
    from streamlit.testing.v1 import AppTest

    import app.web.components as components
    from app.answer.answer_pipeline import AnswerPipeline
    from app.langchain.langchain_tool import build_knowledge_base_tools
    from app.wiring import assemble_pipeline

    _, _, milvus = pair
    milvus.answer.min_evidence_score = 0.0  # the gate is calibrated on e5 cosines, not the hash embedder's

    def pipeline(settings: Settings, **options) -> AnswerPipeline:
        return assemble_pipeline(build_retriever(settings, EMBEDDER), ScriptedGenerator("LoRA 是低秩适配 [1]。"),
                                 FakeEmbedder(dimension=256), settings)

    tools = build_knowledge_base_tools(settings=milvus, pipeline=pipeline(milvus))
    listing = tools.list_documents.invoke({})
    assert f"{len(_documents(milvus))} documents" in listing and "lora_finetuning.md" in listing
    found = tools.search.invoke({"question": "LoRA 微调", "passages_only": True})
    assert "lora_finetuning.md" in found

    monkeypatch.setenv("DOCQA_HOME", str(milvus.data_dir))
    monkeypatch.setenv("DOCQA_STORE__BACKEND", "milvus")
    monkeypatch.setattr(components, "build_pipeline", pipeline)
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app" / "web" / "chat_page.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    info = knowledge_store(milvus).live_info()
    assert [m.value for m in at.sidebar.metric] == [str(info.n_documents), str(info.n_chunks)]
    assert "collections docqa_default_" in html.unescape(at.sidebar.markdown[0].value)
    at.chat_input[0].set_value("LoRA 微调是什么").run()
    assert not at.exception, at.exception
    assert len(at.chat_message) == 2
    st.cache_resource.clear()


def test_another_embedder_is_refused_in_one_line_and_nothing_is_deleted(pair) -> None:
    corpus, _, milvus = pair
    before = _documents(milvus)
    with pytest.raises(KnowledgeBaseError, match="built with embedder") as refused:
        _ingest(milvus, corpus, FakeEmbedder(16, name="other"))
    assert "\n" not in str(refused.value)
    with pytest.raises(KnowledgeBaseError, match="built with embedder"):
        knowledge_store(milvus).open("other:16", 16)
    assert _documents(milvus) == before


def test_unreachable_milvus_is_one_clear_line(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "milvus", uri=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(KnowledgeBaseError, match="cannot be reached") as unreachable:
        knowledge_store(settings).live_generation()
    assert "\n" not in str(unreachable.value)
    process = fake_cli(["--store", f"milvus://127.0.0.1:{free_port()}", str(SAMPLE)], tmp_path)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    assert "cannot be reached" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_a_killed_ingest_leaves_the_previous_generation_answering(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE, corpus)
    store_uri = f"milvus://{tmp_path / 'kb.db'}"
    done = fake_cli(["--store", store_uri, "--quiet", str(corpus)], tmp_path)
    assert done.wait(timeout=180) == 0, done.stderr.read()
    (corpus / "rag_notes.md").unlink()
    (corpus / "extra.txt").write_text("这一段只在被杀死的那次导入里出现：萤火虫数据库。\n", encoding="utf-8")
    killed = fake_cli(["--store", store_uri, "--quiet", str(corpus)], tmp_path, extra=["--die-at", "after:set_removed"])
    assert killed.wait(timeout=180) == 137
    settings = _settings(tmp_path / "home", "milvus", uri=str(tmp_path / "kb.db"))
    store = knowledge_store(settings)
    assert store.live_generation() == "gen-000001"
    paths = {Path(d.path).name for d in store.live_documents()[1]}
    assert "rag_notes.md" in paths and "extra.txt" not in paths
    retriever = build_retriever(settings, LAUNCHED_EMBEDDER)
    assert all("萤火虫" not in p.chunk.text for p in retriever.retrieve("萤火虫数据库", top_k=10).passages)
    assert retriever.retrieve("检索增强生成", top_k=5).passages  # the previous generation answers
    # The next ingest (this process now holds the file) removes the dead run's rows and commits the change.
    with WriterLock(settings.kb_path):
        store.prepare_write()
    rows = store.client.query(store.names.chunks(1), filter="gen_added > 1", output_fields=["chunk_id"], limit=100)
    assert rows == []
    _ingest(settings, corpus, LAUNCHED_EMBEDDER)
    paths = {Path(d.path).name for d in store.live_documents()[1]}
    assert "rag_notes.md" not in paths and "extra.txt" in paths
    # This process holds the Milvus Lite file now: another process is told so in one line.
    other = fake_cli(["--store", store_uri, str(corpus)], tmp_path)
    _, err = other.communicate(timeout=120)
    assert other.returncode == 2 and "open in another process" in err and len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory: pytest.TempPathFactory):
    """Milvus Lite's gRPC server on 127.0.0.1, holding a base ingested over the network by `python -m ingest`."""
    root = tmp_path_factory.mktemp("milvus_server")
    port = free_port()
    log = open(root / "server.log", "wb")
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "milvus_server.py"), "--data-dir",
                               str(root / "data"), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                MilvusStore(_settings(root, "milvus").store, uri, "probe").live_generation()
                break
            except KnowledgeBaseError:
                assert time.monotonic() < deadline and server.poll() is None, (root / "server.log").read_text()
                time.sleep(0.3)
        ingest = fake_cli(["--store", f"milvus://127.0.0.1:{port}", "--quiet", str(SAMPLE)], root)
        assert ingest.wait(timeout=180) == 0, ingest.stderr.read()
        yield root, uri
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_two_answer_servers_answer_from_one_collection(milvus_server) -> None:
    root, uri = milvus_server
    servers = []
    try:
        for n in range(2):
            env = {"DOCQA_HOME": str(root / f"server{n}"), "DOCQA_STORE__BACKEND": "milvus",
                   "DOCQA_STORE__URI": uri}
            servers.append(start_fake_server(env, root / f"answer{n}.log"))
        statuses = [httpx.get(s.base_url + "/v1/kb/status", timeout=30).json() for s in servers]
        assert {s["store"] for s in statuses} == {"milvus"}
        assert {s["generation"] for s in statuses} == {"gen-000001"} and statuses[0]["documents"] == 5
        answers, passages = [], []
        for server in servers:
            reply = httpx.post(server.base_url + "/v1/chat/completions", timeout=60, json={
                "model": "docqa", "messages": [{"role": "user", "content": "LoRA 微调是什么"}]})
            assert reply.status_code == 200, reply.text
            answers.append(reply.json()["choices"][0]["message"]["content"])
            found = httpx.post(server.base_url + "/v1/kb/retrieve", timeout=60,
                               json={"query": "LoRA 微调", "top_k": 3}).json()
            assert found["passages"][0]["chunk"]["source"].endswith("lora_finetuning.md")
            passages.append([p["chunk"]["chunk_id"] for p in found["passages"]])
        assert answers[0] == answers[1] and passages[0] == passages[1]
    finally:
        for server in servers:
            server.stop()


def test_wrong_token_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "milvus_server.py"), "--data-dir",
                               str(tmp_path / "data"), "--port", str(port), "--token", "root:right"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            process = fake_cli(["--store", f"milvus://127.0.0.1:{port}", str(SAMPLE)], tmp_path,
                               env_extra={"DOCQA_STORE__TOKEN": "root:wrong"})
            _, err = process.communicate(timeout=120)
            if "cannot be reached" not in err or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # the server is still starting
        assert process.returncode == 2 and "refused the token" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_the_documents_service_deletes_and_reindexes_on_milvus_as_on_the_folder(tmp_path: Path) -> None:
    """app/answer/documents.py over either store: a delete and a re-index are ordinary generations, and the
    deleted file stays out of the next scan of its folder."""
    from app.answer.documents import delete_documents, reindex_document
    from app.answer.knowledge_bases import document_id

    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE, corpus)
    stores = _settings(tmp_path / "folder", "folder"), _settings(tmp_path / "milvus", "milvus")
    for settings in stores:
        _ingest(settings, corpus)
        paths = sorted(d.path for d in knowledge_store(settings).live_documents()[1])
        deleted = delete_documents(settings, [document_id(paths[0])], lambda: EMBEDDER)
        assert deleted.report.committed and deleted.report.files_removed == 1
        _, report = reindex_document(settings, document_id(paths[1]), lambda: EMBEDDER)
        assert report.committed and report.files_updated == 1
        rescan = _ingest(settings, corpus)
        assert rescan.files_excluded == [paths[0]] and not rescan.committed
        assert paths[0] not in {d.path for d in knowledge_store(settings).live_documents()[1]}
    assert _documents(stores[1]) == _documents(stores[0])
