"""``GET /v1/kb/documents/{id}/pages/{n}.png``: a retrieved passage's page as a PNG with the cited lines marked,
through a real server process (stand-in models); a stale chunk, a text source and a wrong page get JSON errors."""

from __future__ import annotations

import io
import shutil

import httpx
import numpy as np
import pytest
from app.server.process_harness import start_fake_server
from app_fakes import write_corpus
from PIL import Image

from app.answer.knowledge_bases import document_id
from app.config import Settings
from app.sources.highlight import OUTLINE_RGBA
from app.wiring import knowledge_store
from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
from ingest.testing.documents import SAMPLE_DIR
from ingest.testing.fake_embedder import FakeEmbedder

CITED = "分词方式决定了同样一段话要占用多少 token，也就间接决定了上下文窗口能装下多少内容。"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cited_page")
    home = tmp / "home"
    docs = write_corpus(home / "docs")
    shutil.copy(SAMPLE_DIR / "tokenizer_notes.pdf", docs / "tokenizer_notes.pdf")
    settings = Settings(data_dir=home)
    assert run_ingest(settings, [docs], IngestOptions(), embedder_factory=FakeEmbedder).committed
    snapshot = knowledge_store(settings).open()
    try:
        chunks = list(snapshot.iter_chunks())
    finally:
        snapshot.close()
    server = start_fake_server({"DOCQA_HOME": str(home), "DOCQA_CONFIG": ""}, tmp / "server.log")
    yield server.base_url, chunks
    server.stop()


def _url(chunk, page=None) -> str:
    return f"/v1/kb/documents/{document_id(chunk.source)}/pages/{page or chunk.page}.png"


def test_the_cited_page_comes_back_as_a_png_with_the_highlight(served):
    base, chunks = served
    chunk = next(c for c in chunks if c.source.endswith(".pdf") and CITED in c.text)
    response = httpx.get(base + _url(chunk), params={"chunk": chunk.chunk_id, "doc": chunk.doc_id[:16],
                                                     "quote": CITED}, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-docqa-located"] == "true" and response.headers["x-docqa-page"] == "1"
    pixels = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    assert (pixels == OUTLINE_RGBA[:3]).all(axis=2).sum() > 100


def test_stale_text_and_wrong_page_citations_get_json_errors(served):
    base, chunks = served
    pdf = next(c for c in chunks if c.source.endswith(".pdf"))
    text = next(c for c in chunks if c.source.endswith(".md"))
    stale = httpx.get(base + _url(pdf), params={"chunk": pdf.chunk_id, "doc": "0" * 16}, timeout=60)
    assert stale.status_code == 404 and "no longer in the knowledge base" in stale.json()["error"]["message"]
    wrong = httpx.get(base + _url(pdf, page=2), params={"chunk": pdf.chunk_id, "doc": pdf.doc_id}, timeout=60)
    assert wrong.status_code == 404 and "is not on page 2" in wrong.json()["error"]["message"]
    as_text = httpx.get(base + f"/v1/kb/documents/{document_id(text.source)}/pages/0.png",
                        params={"chunk": text.chunk_id, "doc": text.doc_id}, timeout=60)
    assert as_text.status_code == 404  # a text file has no pages
    other = httpx.get(base + _url(pdf), params={"chunk": pdf.chunk_id, "doc": pdf.doc_id, "base": "nosuchbase"},
                      timeout=60)
    assert other.status_code == 404 and "nosuchbase" in other.json()["error"]["message"]
    named = httpx.get(base + _url(pdf), params={"chunk": pdf.chunk_id, "doc": pdf.doc_id, "base": "default"},
                      timeout=60)
    assert named.status_code == 200
    missing = httpx.get(base + _url(pdf), timeout=60)
    assert missing.status_code == 400 and "chunk" in missing.json()["error"]["message"]
