"""The knowledge-workspace services every face calls (app/answer/documents.py, app/answer/base_selection.py) over
real bases on disk (real loaders, FAISS, BM25, the live pipeline with its gates and checks) with a hashing
embedder and a scripted generator that cites the passage holding a keyword."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from answer_fakes import FakeRetriever, scored
from app_fakes import CitingGenerator, ingest_with_hash_embedder, write_corpus

from app.answer.answer_pipeline import AnswerPipeline
from app.answer.base_selection import BasePipelines
from app.answer.documents import (
    DocumentFileMissingError,
    OriginalUnavailableError,
    delete_documents,
    original_file,
    reindex_document,
)
from app.answer.knowledge_bases import UnknownDocumentError, document_id, list_documents
from app.config import Settings, base_registry, settings_for_base
from app.uploads.upload_ingest import ingest_uploads
from app.wiring import assemble_pipeline, build_pipeline, kb_notices, knowledge_store
from ingest.store.kb_lock import KnowledgeBaseLockedError
from ingest.store.knowledge_base import KnowledgeBaseError
from ingest.testing.fake_embedder import FakeEmbedder
from retrieval.multi_base_retriever import MultiBaseRetriever
from retrieval.settings import RetrievalSettings

PORT_QUESTION = "星河数据库默认监听哪个端口？"
PORT_ANSWER = "星河数据库默认监听 7341 端口 [{n}]。"


def _settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path)
    # The evidence gate is calibrated on e5 cosines; the hash embedder's cosines are lower, so it stays open here.
    settings.answer.min_evidence_score = 0.0
    return settings


def _pipelines(settings: Settings, generator: CitingGenerator) -> BasePipelines:
    embedder = FakeEmbedder()
    return BasePipelines(settings, lambda s: build_pipeline(s, generator=generator, embedder=embedder),
                         lambda retriever: assemble_pipeline(retriever, generator, embedder, settings))


def _doc_id(settings: Settings, name: str) -> str:
    return next(d.id for d in list_documents(knowledge_store(settings)) if d.name == name)


def _cited_sources(pipelines: BasePipelines, question: str, bases: list[str] | None = None) -> list[str]:
    answer = pipelines.snapshot(bases).pipeline.answer(question)
    return [Path(c.passage.chunk.source).name for c in answer.citations]


def test_a_deleted_document_is_not_cited_by_the_next_answer(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    pipelines = _pipelines(settings, CitingGenerator(PORT_ANSWER, "7341"))
    assert _cited_sources(pipelines, PORT_QUESTION) == ["星河数据库手册.md"]
    before = pipelines.snapshot()

    outcome = delete_documents(settings, [_doc_id(settings, "星河数据库手册.md")])
    assert [Path(d.path).name for d in outcome.deleted] == ["星河数据库手册.md"]
    assert outcome.report.committed and outcome.report.documents_total == 1
    after = pipelines.snapshot()
    assert after.generation != before.generation
    passages = after.pipeline.retriever.retrieve(PORT_QUESTION).passages
    assert passages and not any("7341" in p.text for p in passages)
    assert "星河数据库手册.md" not in _cited_sources(pipelines, PORT_QUESTION)
    # The folder it came from is left as it was, and a re-scan does not bring the document back.
    assert (tmp_path / "docs" / "星河数据库手册.md").exists()
    report = ingest_with_hash_embedder(settings, [tmp_path / "docs"])
    assert not report.committed and [Path(p).name for p in report.files_excluded] == ["星河数据库手册.md"]


def test_deleting_an_upload_removes_its_file_and_a_second_delete_is_not_found(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    outcome = ingest_uploads([("上传.md", "# 上传\n\n晨曦服务每小时同步一次。\n".encode())], settings,
                             embedder=FakeEmbedder())
    assert outcome.ingested == ["上传.md"]
    doc_id = _doc_id(settings, "上传.md")
    record, path = original_file(settings, doc_id)
    assert path == settings.upload_path / "上传.md" and path.read_text(encoding="utf-8").startswith("# 上传")
    deleted = delete_documents(settings, [doc_id])
    assert deleted.report.documents_total == 0 and not path.exists()
    assert list_documents(knowledge_store(settings)) == []  # the last document: an empty but valid base
    with pytest.raises(UnknownDocumentError, match="deleted already"):
        delete_documents(settings, [doc_id])
    # The same name uploaded again is ingested again (an upload names its file).
    again = ingest_uploads([("上传.md", "# 上传\n\n晨曦服务每小时同步一次。\n".encode())], settings,
                           embedder=FakeEmbedder())
    assert again.ingested == ["上传.md"]


def test_two_tabs_deleting_the_same_document_one_succeeds_the_other_is_told(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    doc_id = _doc_id(settings, "aurora-notes.txt")
    results: list[object] = []
    start = threading.Barrier(2)

    def tab() -> None:
        start.wait()
        try:
            results.append(delete_documents(settings, [doc_id]))
        except (UnknownDocumentError, KnowledgeBaseLockedError) as exc:
            results.append(exc)

    threads = [threading.Thread(target=tab) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [r for r in results if not isinstance(r, Exception)]
    told = [r for r in results if isinstance(r, Exception)]
    assert len(done) == 1 and len(told) == 1, results
    assert "deleted already" in str(told[0]) or "another ingest is running" in str(told[0])
    assert [d.name for d in list_documents(knowledge_store(settings))] == ["星河数据库手册.md"]


def test_deleting_several_at_once_and_an_unknown_id_deletes_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    ids = [d.id for d in list_documents(knowledge_store(settings))]
    with pytest.raises(UnknownDocumentError, match="'0000000000000000'"):
        delete_documents(settings, [ids[0], "0000000000000000"])
    assert len(list_documents(knowledge_store(settings))) == 2
    assert delete_documents(settings, ids).report.documents_total == 0


def test_original_of_a_folder_document_only_while_unchanged(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    docs = write_corpus(tmp_path / "docs")
    ingest_with_hash_embedder(settings, [docs])
    doc_id = _doc_id(settings, "aurora-notes.txt")
    assert original_file(settings, doc_id)[1] == docs / "aurora-notes.txt"
    (docs / "aurora-notes.txt").write_text("Aurora now retries five times.\n", encoding="utf-8")
    with pytest.raises(OriginalUnavailableError, match="has changed since it was ingested"):
        original_file(settings, doc_id)
    (docs / "aurora-notes.txt").unlink()
    with pytest.raises(OriginalUnavailableError, match="no longer there"):
        original_file(settings, doc_id)
    with pytest.raises(DocumentFileMissingError, match="the file is gone"):
        reindex_document(settings, doc_id)


def test_reindex_reads_a_changed_file_again(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    docs = write_corpus(tmp_path / "docs")
    ingest_with_hash_embedder(settings, [docs])
    doc_id = _doc_id(settings, "aurora-notes.txt")
    (docs / "aurora-notes.txt").write_text("Aurora now retries five times.\n", encoding="utf-8")
    record, report = reindex_document(settings, doc_id, FakeEmbedder)
    assert record.path.endswith("aurora-notes.txt") and report.committed and report.files_updated == 1
    assert original_file(settings, doc_id)[1].read_text(encoding="utf-8").startswith("Aurora now")


# --- several bases in one question -------------------------------------------------------------------------------

WORK = {"aurora-notes.txt": "Aurora is a small scheduling service. It retries a failed job three times, "
                            "waiting thirty seconds between attempts.\n"}
HOME = {"garden.txt": "The garden pump starts at 6:00 every morning and waters the roses for twenty minutes.\n"}


def _two_bases(tmp_path: Path) -> Settings:
    settings = _settings(tmp_path)
    for name, files in (("work", WORK), ("home", HOME)):
        base_registry(settings).create(name)
        ingest_with_hash_embedder(settings_for_base(settings, name), [write_corpus(tmp_path / name, files)])
    return settings


def test_several_bases_are_fused_and_each_passage_names_its_base(tmp_path: Path) -> None:
    settings = _two_bases(tmp_path)
    pipelines = _pipelines(settings, CitingGenerator("The garden pump waters the roses [{n}].", "pump"))
    snapshot = pipelines.snapshot(["work", "home"])
    assert snapshot.generation.startswith("work@gen-") and "+home@gen-" in snapshot.generation
    passages = snapshot.pipeline.retriever.retrieve("What does the garden pump water?").passages
    assert {p.base for p in passages} == {"work", "home"}
    assert {(p.base, Path(p.chunk.source).name) for p in passages} == {("work", "aurora-notes.txt"),
                                                                        ("home", "garden.txt")}
    answer = snapshot.pipeline.answer("What does the garden pump water?")
    assert [(c.passage.base, Path(c.passage.chunk.source).name) for c in answer.citations] == [("home", "garden.txt")]
    assert pipelines.snapshot(["work", "home"]) is snapshot  # nothing committed: the same pipeline
    # One base is exactly that base's pipeline, its passages named too.
    single = pipelines.snapshot(["home"])
    assert single is pipelines.live("home").snapshot()
    assert {p.base for p in single.pipeline.retriever.retrieve("pump").passages} == {"home"}


def test_a_damaged_or_unknown_base_is_left_out_with_a_line_and_the_others_answer(tmp_path: Path) -> None:
    settings = _two_bases(tmp_path)
    (base_registry(settings).get("home").folder / "base.json").write_text("{not json", encoding="utf-8")
    pipelines = _pipelines(settings, CitingGenerator("Aurora retries three times [{n}].", "Aurora"))
    snapshot = pipelines.snapshot(["work", "home", "nosuch"])
    notices = kb_notices(snapshot.pipeline.retriever)
    assert len(notices) == 2
    assert notices[0].startswith("knowledge base 'home' left out:") and "damaged" in notices[0]
    assert notices[1].startswith("knowledge base 'nosuch' left out: no knowledge base named 'nosuch'")
    passages = snapshot.pipeline.retriever.retrieve("How often does Aurora retry?").passages
    assert passages and {p.base for p in passages} == {"work"}
    with pytest.raises(KnowledgeBaseError, match="'home' left out.*'nosuch' left out"):
        pipelines.snapshot(["home", "nosuch"])


def test_multi_base_fusion_keeps_equal_chunk_ids_of_two_bases_apart_and_drops_repeated_text() -> None:
    class Part(FakeRetriever):
        def __init__(self, base: str, passages) -> None:
            super().__init__(passages)
            self.base, self.embedder = base, FakeEmbedder()

        def retrieve(self, query, top_k=None, rerank=None):
            result = super().retrieve(query, top_k, rerank)
            for p in result.passages:
                p.base = self.base
            return result

    a = Part("a", [scored("alpha one", 1), scored("shared text", 2)])
    b = Part("b", [scored("beta one", 1), scored("shared  text", 2)])
    retriever = MultiBaseRetriever([a, b], RetrievalSettings(top_k=5))
    passages = retriever.retrieve("q").passages
    assert [(p.base, p.chunk.chunk_id) for p in passages] == [("a", 1), ("b", 1), ("a", 2)]
    assert MultiBaseRetriever([a], RetrievalSettings()).retrieve("q").passages == a.retrieve("q").passages
    # Each base's first passage ties in reciprocal rank: the one closer to the question (cosine) leads the tier.
    closer = Part("c", [scored("gamma one", 1, dense=0.95), scored("gamma two", 2, dense=0.1)])
    fused = MultiBaseRetriever([a, closer], RetrievalSettings(top_k=4)).retrieve("q").passages
    assert [(p.base, p.chunk.chunk_id) for p in fused] == [("c", 1), ("a", 1), ("a", 2), ("c", 2)]
    with pytest.raises(ValueError):
        MultiBaseRetriever([], RetrievalSettings())
    assert isinstance(assemble_pipeline(retriever, CitingGenerator("x", "y"), FakeEmbedder(), Settings()),
                      AnswerPipeline)


def test_pipelines_over_several_bases_are_kept_for_a_bounded_number_of_selections(tmp_path, monkeypatch) -> None:
    import app.answer.base_selection as base_selection

    monkeypatch.setattr(base_selection, "MAX_SELECTIONS", 1)
    pipelines = _pipelines(_two_bases(tmp_path), CitingGenerator("x [{n}]", "x"))
    first = pipelines.snapshot(["work", "home"])
    assert pipelines.snapshot(["work", "home"]) is first
    pipelines.snapshot(["home", "work"])  # another selection: the first one goes
    assert pipelines.snapshot(["work", "home"]) is not first
    # A base deleted (or renamed) is forgotten with every selection that named it.
    pipelines.forget("home")
    assert pipelines._selections == {} and "home" not in pipelines._bases
