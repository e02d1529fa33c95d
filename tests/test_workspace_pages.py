"""The workspace pages of the web page (knowledge bases, documents, retrieval testing, and the chat's base choice)
driven headless with AppTest over real bases on disk: the real registry, real FAISS/SQLite stores built with the hash
embedder, the real retriever; only the LLM is scripted."""

from __future__ import annotations

import html
import json
import shutil
import tomllib
from pathlib import Path

import pytest
import streamlit as st
from app_fakes import CitingGenerator, RecordingGenerator, ingest_with_hash_embedder, write_corpus
from streamlit.testing.v1 import AppTest

import app.wiring as wiring
from app.cli import retrieval_cli
from app.answer.knowledge_bases import list_documents
from app.config import base_registry, load_settings, settings_for_base
from app.wiring import knowledge_store
from ingest.settings import LimitSettings
from ingest.testing.fake_embedder import FakeEmbedder

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "app" / "web" / "chat_page.py")
TIMEOUT = 60
OTHER_BASE = "项目 B"
OTHER_CORPUS = {"极光手册.md": "# 极光调度器\n\n极光调度器在任务失败后最多重试五次，每次间隔四十秒。"
                               "重试全部失败时，它把任务移入死信队列，并给值班人员发一封邮件。\n\n"
                               "## 日志\n\n每个任务的日志保存三十天，之后压缩归档到冷存储。\n"}
QUESTION = "星河数据库默认监听哪个端口？"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data folder with the default base (two documents) and a second base (one), the embedder and LLM the page
    loads replaced by the hash embedder and a scripted LLM; yields the settings."""
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path))
    settings = load_settings()
    ingest_with_hash_embedder(settings, [write_corpus(tmp_path / "docs")])
    base_registry(settings).create(OTHER_BASE)
    ingest_with_hash_embedder(settings_for_base(settings, OTHER_BASE), [write_corpus(tmp_path / "other",
                                                                                     OTHER_CORPUS)])
    monkeypatch.setattr(wiring, "load_embedder", lambda settings: FakeEmbedder())
    monkeypatch.setattr(wiring, "build_generator", lambda settings: RecordingGenerator("星河数据库默认监听 7341 端口 [1]。"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield settings
    st.cache_resource.clear()
    st.cache_data.clear()


def _page(name: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    at.switch_page(name).run()
    assert not at.exception, at.exception
    return at


def _table(at: AppTest, index: int = 0) -> list[dict]:
    return at.dataframe[index].value.to_dict("records")


def _text(element) -> str:
    """What the user reads: the page escapes text for Markdown (entities, word joiners)."""
    return html.unescape(element.value).replace("\u2060", "")


def _messages(at: AppTest) -> list[str]:
    return [_text(e) for e in (*at.error, *at.success, *at.warning)]


# -- knowledge bases ------------------------------------------------------------------------------------------------

def test_the_bases_page_lists_every_base_and_a_damaged_one_with_its_problem(home):
    damaged = home.data_dir / "bases" / "broken"
    damaged.mkdir()
    (damaged / "base.json").write_text("{not json", encoding="utf-8")
    at = _page("bases_page.py")
    rows = {r["名称"]: r for r in _table(at)}
    assert rows["default"]["文档"] == 2 and rows["default"]["当前"] == "●"
    assert rows[OTHER_BASE]["文档"] == 1 and rows[OTHER_BASE]["段落"] >= 1
    assert "base.json: knowledge base damaged" in rows["?broken"]["问题"]
    assert rows[OTHER_BASE]["问题"] == "" and rows[OTHER_BASE]["大小"].endswith("kB")
    # The damaged base cannot be chosen; the others can.
    assert at.selectbox(key="manage_base").options == ["default", OTHER_BASE]


def _create(at: AppTest, name: str) -> AppTest:
    at.text_input(key="new_base_name").set_value(name)
    at.button[[b.label for b in at.button].index("新建")].click().run()
    assert not at.exception, at.exception
    return at


def test_creating_a_base_switches_to_it_with_its_own_settings(home):
    at = _page("bases_page.py")
    at.number_input(key="new_chunk_size").set_value(200)
    at.number_input(key="new_chunk_overlap").set_value(20)
    at.toggle(key="new_ocr").set_value(False)
    _create(at, "工作 notes")
    assert _text(at.success[0]) == "已新建知识库「工作 notes」，并切换到它。"
    rows = {r["名称"]: r for r in _table(at)}
    assert rows["工作 notes"]["当前"] == "●" and rows["工作 notes"]["文档"] == 0
    created = settings_for_base(home, "工作 notes")
    assert (created.chunking.chunk_size, created.chunking.chunk_overlap, created.ocr.engine) == (200, 20, "off")


@pytest.mark.parametrize("name, says", [
    ("a/b", "no '/'"), ("..", "no '/'"), ("a.b", "no '/'"), ("con:1", "no '/'"), ("a\\b", "no '/'"),
    ("bell\x07", "control"), ("x" * 300, "300 characters long"), ("   ", "cannot be empty"),
    ("Default", "already exists"), ("项目 b", "already exists"),
])
def test_a_bad_name_gets_one_clear_line_and_creates_nothing(home, name, says):
    at = _page("bases_page.py")
    before = sorted(p.name for p in (home.data_dir / "bases").iterdir())
    _create(at, name)
    assert len(at.error) == 1 and says in _text(at.error[0]), _messages(at)
    assert sorted(p.name for p in (home.data_dir / "bases").iterdir()) == before


def test_overlap_not_smaller_than_the_chunk_size_is_refused(home):
    at = _page("bases_page.py")
    at.number_input(key="new_chunk_size").set_value(100)
    at.number_input(key="new_chunk_overlap").set_value(100)
    _create(at, "overlapping")
    assert "must be smaller than the chunk size" in _text(at.error[0])
    assert not base_registry(home).has("overlapping")


def test_a_bases_own_settings_are_saved_from_the_page(home):
    at = _page("bases_page.py")
    at.selectbox(key="manage_base").set_value(OTHER_BASE).run()
    at.number_input(key=f"edit_{OTHER_BASE}_chunk_size").set_value(150)
    at.number_input(key=f"edit_{OTHER_BASE}_chunk_overlap").set_value(15)
    at.toggle(key=f"edit_{OTHER_BASE}_ocr").set_value(False)
    at.button(key="save_base_settings").click().run()
    assert _text(at.success[0]) == "已保存「项目 B」的设置。"
    saved = settings_for_base(home, OTHER_BASE)
    assert (saved.chunking.chunk_size, saved.chunking.chunk_overlap, saved.ocr.engine) == (150, 15, "off")


def test_a_base_whose_store_is_damaged_is_listed_with_its_problem_and_the_others_work(home):
    kb = settings_for_base(home, OTHER_BASE).kb_path
    shutil.rmtree(kb)
    kb.write_text("not a folder", encoding="utf-8")  # the base's store replaced by a file
    at = _page("bases_page.py")
    rows = {r["名称"]: r for r in _table(at)}
    assert rows[OTHER_BASE]["问题"] and rows["default"]["问题"] == ""
    at.switch_page("chat_view.py").run()
    _ask(at, QUESTION)
    assert "星河数据库手册.md" in "\n".join(h.proto.body for h in at.chat_message[1].html)


def test_rename_keeps_the_base_and_its_documents(home):
    at = _page("bases_page.py")
    at.selectbox(key="manage_base").set_value(OTHER_BASE).run()
    at.text_input(key="rename_to").set_value("项目 C")
    at.button(key="rename_base").click().run()
    assert _text(at.success[0]) == "「项目 B」已改名为「项目 C」。"
    rows = {r["名称"]: r for r in _table(at)}
    assert OTHER_BASE not in rows and rows["项目 C"]["文档"] == 1
    # A bad new name: the registry's line, nothing renamed.
    at.selectbox(key="manage_base").set_value("项目 C").run()
    at.text_input(key="rename_to").set_value("../escape")
    at.button(key="rename_base").click().run()
    assert "no '/'" in _text(at.error[0]) and base_registry(home).has("项目 C")


def test_the_default_base_cannot_be_renamed_or_deleted_on_the_page(home):
    at = _page("bases_page.py")
    assert at.selectbox(key="manage_base").value == "default"
    assert [c.value for c in at.caption if "默认知识库" in c.value]
    with pytest.raises(KeyError):
        at.button(key="delete_base")


def test_delete_needs_the_typed_name(home):
    at = _page("bases_page.py")
    at.selectbox(key="manage_base").set_value(OTHER_BASE).run()
    assert at.button(key="delete_base").disabled
    at.text_input(key="delete_confirm").set_value("项目").run()
    assert at.button(key="delete_base").disabled
    at.text_input(key="delete_confirm").set_value(OTHER_BASE).run()
    at.button(key="delete_base").click().run()
    assert _text(at.success[0]) == "已删除知识库「项目 B」。"
    assert [r["名称"] for r in _table(at)] == ["default"]
    assert not base_registry(home).has(OTHER_BASE)


def test_a_switch_on_the_bases_page_is_what_the_chat_uses(home):
    at = _page("bases_page.py")
    at.selectbox(key="manage_base").set_value(OTHER_BASE).run()
    at.button(key="switch_base").click().run()
    assert _text(at.success[0]) == "对话、文档和检索测试现在使用「项目 B」。"
    at.switch_page("chat_view.py").run()
    assert at.sidebar.multiselect(key="chat_bases").value == [OTHER_BASE]
    assert at.sidebar.metric[0].value == "1"  # the other base's one document


# -- chat: one conversation per base -----------------------------------------------------------------------------

def _ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def test_each_base_keeps_its_own_conversation_and_answers_from_its_own_documents(home):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    _ask(at, QUESTION)
    assert len(at.chat_message) == 2
    assert "星河数据库手册.md" in "\n".join(h.proto.body for h in at.chat_message[1].html)
    at.sidebar.multiselect(key="chat_bases").set_value([OTHER_BASE]).run()
    assert len(at.chat_message) == 0
    assert "「项目 B」" in _text(at.caption[0])
    _ask(at, "极光调度器失败后重试几次？")
    # The other base's passages: its only document, never the default base's.
    body = "\n".join(h.proto.body for h in at.chat_message[1].html) + "\n".join(
        h.proto.body for e in at.chat_message[1].expander for h in e.html)
    assert "极光手册.md" in body and "星河数据库手册.md" not in body
    at.sidebar.multiselect(key="chat_bases").set_value(["default"]).run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert QUESTION in "\n".join(h.proto.body for h in at.chat_message[0].html)


def _bodies(message) -> str:
    return "\n".join(h.proto.body for h in message.html) + "\n".join(
        h.proto.body for e in message.expander for h in e.html)


def test_a_question_over_two_bases_draws_on_both_and_names_each_source_s_base(home, monkeypatch):
    monkeypatch.setenv("DOCQA_ANSWER__MIN_EVIDENCE_SCORE", "-1")  # the hash embedder's cosines are low
    # Cites whichever passage holds the port, wherever the fusion of the two bases ranked it.
    monkeypatch.setattr(wiring, "build_generator", lambda settings: CitingGenerator("星河数据库默认监听 7341 端口 [{n}]。",
                                                                                    "7341"))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.sidebar.multiselect(key="chat_bases").set_value(["default", OTHER_BASE]).run()
    assert [s.value for s in at.sidebar.subheader] [:2] == ["知识库 · default", "知识库 · 项目 B"]
    _ask(at, "星河数据库的端口和极光调度器的重试次数？")
    # Passages of both bases were considered (fused); the cited source is titled with its base.
    answer = at.session_state["messages"][1].answer
    assert {p.base for p in answer.passages} == {"default", OTHER_BASE}
    assert "default · <b>星河数据库手册.md</b>" in html.unescape(_bodies(at.chat_message[1]))
    # Its own conversation: each base alone has none yet.
    at.sidebar.multiselect(key="chat_bases").set_value([OTHER_BASE]).run()
    assert len(at.chat_message) == 0
    at.sidebar.multiselect(key="chat_bases").set_value([OTHER_BASE, "default"]).run()  # any order: the same choice
    assert len(at.chat_message) == 2


def test_an_empty_choice_of_bases_asks_for_one(home):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.sidebar.multiselect(key="chat_bases").set_value([]).run()
    assert _text(at.info[0]) == "请在侧栏选择至少一个知识库。"
    assert not at.exception


# -- documents ------------------------------------------------------------------------------------------------------

def test_the_documents_page_shows_the_chosen_bases_documents_and_their_chunks(home):
    at = _page("documents_page.py")
    rows = {r["名称"]: r for r in _table(at)}
    assert set(rows) == {"星河数据库手册.md", "aurora-notes.txt"}
    manual = rows["星河数据库手册.md"]
    assert manual["类型"] and manual["段落"] >= 1 and manual["原文件"] == "未变" and manual["页数/幻灯片"] == "—"
    chooser = at.selectbox(key="doc_chosen")
    chooser.select_index(chooser.options.index("星河数据库手册.md")).run()
    chunks = _table(at, 1)
    assert chunks[0]["#"] == 1 and any("7341" in c["内容"] for c in chunks)
    assert any(c["标题路径"].startswith("星河数据库") for c in chunks)
    # Another base: its documents only.
    at.sidebar.selectbox(key="documents_base").set_value(OTHER_BASE).run()
    assert [r["名称"] for r in _table(at)] == ["极光手册.md"]


def _deck(path: Path, slides: int) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for number in range(1, slides + 1):
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = f"第{number}章"
        box = slide.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1))
        box.text_frame.text = f"第{number}季度收入增长{number * 7}%，主要来自华东地区的新客户。"
    deck.save(str(path))
    return path


def test_a_decks_slides_are_counted_and_its_chunks_say_which_slide(home, tmp_path):
    ingest_with_hash_embedder(home, [_deck(tmp_path / "季度总结.pptx", 3)])
    at = _page("documents_page.py")
    assert {r["名称"]: r["页数/幻灯片"] for r in _table(at)}["季度总结.pptx"] == "3"
    chooser = at.selectbox(key="doc_chosen")
    chooser.select_index(chooser.options.index("季度总结.pptx")).run()
    assert [c["位置"] for c in _table(at, 1)] == ["slide 1", "slide 2", "slide 3"]


def test_a_changed_or_missing_original_is_said_in_the_table(home):
    (home.data_dir / "docs" / "aurora-notes.txt").write_text("changed", encoding="utf-8")
    (home.data_dir / "docs" / "星河数据库手册.md").unlink()
    at = _page("documents_page.py")
    rows = {r["名称"]: r["原文件"] for r in _table(at)}
    assert rows == {"aurora-notes.txt": "已修改（需重新索引）", "星河数据库手册.md": "已不在原处"}


def test_an_empty_base_says_so_and_offers_the_upload(home):
    base_registry(home).create("empty")
    at = _page("documents_page.py")
    at.sidebar.selectbox(key="documents_base").set_value("empty").run()
    assert _text(at.info[0]) == "这个知识库还没有文档：在上面上传。"
    assert at.expander[0].label == "上传文档"


# -- document actions (the shared document service, app/answer/documents.py) ----------------------------------------

def _ids(settings, *names: str) -> list[str]:
    docs = {d.name: d.id for d in list_documents(knowledge_store(settings))}
    return [docs[n] for n in names]


def _documents_of_other_base() -> AppTest:
    at = _page("documents_page.py")
    at.sidebar.selectbox(key="documents_base").set_value(OTHER_BASE).run()
    return at


def _delete(at: AppTest, ids: list[str]) -> AppTest:
    at.multiselect(key="doc_delete_choice").set_value(ids).run()
    assert at.button(key="doc_delete").disabled  # not before the confirmation
    at.checkbox(key="doc_delete_confirm").check().run()
    at.button(key="doc_delete").click().run()
    assert not at.exception, at.exception
    return at


def test_deleting_the_last_document_leaves_an_empty_base_that_still_works(home):
    other = settings_for_base(home, OTHER_BASE)
    at = _delete(_documents_of_other_base(), _ids(other, "极光手册.md"))
    assert _text(at.success[0]) == "已删除：极光手册.md"
    assert _text(at.info[0]) == "这个知识库还没有文档：在上面上传。"
    assert knowledge_store(other).live_info().n_documents == 0
    # The chat over the emptied base refuses instead of failing.
    at.switch_page("chat_view.py").run()
    _ask(at, "极光调度器失败后重试几次？")
    assert not at.error and at.chat_message[1].warning


def test_deleting_several_documents_at_once(home):
    at = _delete(_page("documents_page.py"), _ids(home, "星河数据库手册.md", "aurora-notes.txt"))
    assert "星河数据库手册.md" in _text(at.success[0]) and "aurora-notes.txt" in _text(at.success[0])
    assert knowledge_store(home).live_info().n_documents == 0
    # Files from the user's own folder are never deleted: they leave the base only.
    assert (home.data_dir / "docs" / "aurora-notes.txt").is_file()


def test_two_tabs_deleting_the_same_document(home):
    doomed = _ids(home, "aurora-notes.txt")
    first, second = _page("documents_page.py"), _page("documents_page.py")
    second.multiselect(key="doc_delete_choice").set_value(doomed).run()
    second.checkbox(key="doc_delete_confirm").check().run()
    _delete(first, doomed)
    # The second tab's click reruns its page over the new generation: the document is no longer offered, nothing
    # else is deleted, and nothing fails.
    second.button(key="doc_delete").click().run()
    assert not second.exception and not second.error
    assert [r["名称"] for r in _table(second)] == ["星河数据库手册.md"]
    assert second.multiselect(key="doc_delete_choice").value == []
    assert knowledge_store(home).live_info().n_documents == 1


def test_reindex_splits_a_document_again_with_the_bases_new_settings(home):
    other = settings_for_base(home, OTHER_BASE)
    before = knowledge_store(other).live_info().n_chunks
    base_registry(home).update_settings(OTHER_BASE, {"chunking": {"chunk_size": 40, "chunk_overlap": 0}})
    at = _documents_of_other_base()
    at.button(key="doc_reindex").click().run()
    assert _text(at.success[0]) == "已重新索引「极光手册.md」。"
    assert knowledge_store(other).live_info().n_chunks > before
    assert len(_table(at, 1)) == knowledge_store(other).live_info().n_chunks  # the chunk view shows the new split


def test_the_original_can_be_downloaded_while_it_is_unchanged(home):
    at = _page("documents_page.py")
    chooser = at.selectbox(key="doc_chosen")
    chooser.select_index(chooser.options.index("aurora-notes.txt")).run()
    assert [e for e in at.get("download_button") if e.proto.label == "下载原文件"]
    (home.data_dir / "docs" / "aurora-notes.txt").write_text("changed since", encoding="utf-8")
    at.run()
    assert not at.get("download_button")
    assert any("has changed since it was ingested" in _text(c) for c in at.caption)


# -- retrieval testing ----------------------------------------------------------------------------------------------

def _search(at: AppTest, query: str) -> AppTest:
    at.text_input(key="rt_query").set_value(query)
    at.button[[b.label for b in at.button].index("检索")].click().run()
    assert not at.exception, at.exception
    return at


def _cli_json(capsys, *args: str) -> dict:
    assert retrieval_cli.main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _score(cell: str) -> float | None:
    return None if cell == "—" else float(cell.split(" ")[0])


@pytest.mark.parametrize("rerank", [False, True])
def test_retrieval_testing_shows_the_same_scores_as_the_cli(home, capsys, rerank):
    at = _page("retrieval_page.py")
    at.toggle(key="rt_rerank").set_value(rerank)
    table = _table(_search(at, QUESTION))
    expected = _cli_json(capsys, QUESTION, "--rerank" if rerank else "--no-rerank")["passages"]
    assert [r["chunk"] for r in table] == [p["chunk"]["chunk_id"] for p in expected]
    for row, passage in zip(table, expected):
        assert _score(row["向量相似度"]) == pytest.approx(passage["dense_score"], abs=5e-5)
        assert _score(row["BM25"]) == (None if passage["bm25_score"] is None
                                        else pytest.approx(passage["bm25_score"], abs=5e-5))
        assert _score(row["融合 (RRF)"]) == pytest.approx(passage["fused_score"], abs=5e-5)
        if rerank:
            assert _score(row["重排序"]) == pytest.approx(passage["rerank_score"], abs=5e-5)
        else:
            assert row["重排序"] == "—" and passage["rerank_score"] is None


def test_retrieval_controls_change_this_search_only(home, capsys):
    at = _search(_page("retrieval_page.py"), QUESTION)
    before = _table(at)
    at.number_input(key="rt_passages").set_value(1)
    at.number_input(key="rt_bm25_weight").set_value(0.0)
    at.toggle(key="rt_rerank").set_value(True)
    at.number_input(key="rt_min_evidence").set_value(1.0)
    _search(at, QUESTION)
    after = _table(at)
    assert len(after) == 1 < len(before)
    # BM25 weighs nothing: the fused score is the dense share alone (min-max normalised, at most 1).
    assert _score(after[0]["融合 (RRF)"]) <= 1.0 < max(_score(r["融合 (RRF)"]) for r in before)
    assert after[0]["重排序"] != "—"
    assert _text(at.warning[0]).startswith("证据门槛会拒答") and after[0]["达到门槛"] == ""
    # Nothing was configured: the chat's settings are as before.
    at.switch_page("chat_view.py").run()
    assert at.sidebar.number_input(key="set_top_k").value == home.retrieval.top_k


def test_a_low_threshold_lets_the_question_through(home):
    at = _page("retrieval_page.py")
    at.number_input(key="rt_min_evidence").set_value(-1.0)
    _search(at, QUESTION)
    assert _text(at.success[0]).startswith("证据门槛放行") and _table(at)[0]["达到门槛"] == "✓"


def test_an_empty_or_overlong_question_is_not_searched(home):
    at = _search(_page("retrieval_page.py"), "   ")
    assert not at.dataframe and not at.error


# -- Streamlit's own chrome -----------------------------------------------------------------------------------------

def test_streamlits_upload_limit_is_docqas_and_the_deploy_button_is_hidden():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == LimitSettings().max_upload_mb
    assert config["client"]["toolbarMode"] == "viewer"
    # #27's security lines stay.
    assert config["server"]["address"] == "127.0.0.1" and config["server"]["enableXsrfProtection"] is True
