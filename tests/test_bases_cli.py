"""Named knowledge bases from the terminal: ``--kb-name`` on the CLIs (the ingest creates the base), and
``python -m app.cli.bases`` to list, rename and delete them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_fakes import write_corpus

from app.cli import bases
from app.cli.ingest_cli import main as ingest_main
from app.cli.retrieval_cli import main as retrieval_main
from app.config import load_settings, settings_for_base
from ingest.store.knowledge_base import KnowledgeBase
from ingest.testing.fake_embedder import FakeEmbedder


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCQA_CONFIG", "")
    monkeypatch.delenv("DOCQA_KB_NAME", raising=False)
    return tmp_path / "home"


def _listing(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    capsys.readouterr()
    assert bases.main(["--json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_the_ingest_creates_a_named_base_beside_the_default_one(home, tmp_path, capsys) -> None:
    docs = write_corpus(tmp_path / "docs")
    assert ingest_main(["--quiet", "--kb-name", "项目资料", str(docs)], embedder_factory=FakeEmbedder) == 0
    assert "created knowledge base '项目资料'" in capsys.readouterr().err
    rows = _listing(capsys)
    assert rows["项目资料"]["documents"] == 2 and not rows["项目资料"]["problem"]
    assert rows["default"]["documents"] == 0  # the default base got nothing
    settings = settings_for_base(load_settings(), "项目资料")
    with KnowledgeBase.open(settings.kb_path) as kb:
        assert len(kb.documents()) == 2
    # A second ingest into it (another letter case) is incremental, and creates nothing.
    assert ingest_main(["--quiet", "--kb-name", "项目资料", str(docs)], embedder_factory=FakeEmbedder) == 0
    assert "created" not in capsys.readouterr().err


def test_a_question_never_creates_a_base_and_names_the_known_ones(home, capsys) -> None:
    assert bases.main(["create", "笔记"]) == 0
    capsys.readouterr()
    assert retrieval_main(["--kb-name", "不存在", "问题"]) == 2
    err = capsys.readouterr().err
    assert "no knowledge base named '不存在'" in err and "笔记" in err
    assert "不存在" not in _listing(capsys)


def test_rename_and_delete(home, tmp_path, capsys) -> None:
    docs = write_corpus(tmp_path / "docs")
    assert ingest_main(["--quiet", "--kb-name", "old", str(docs)], embedder_factory=FakeEmbedder) == 0
    assert bases.main(["rename", "old", "new"]) == 0
    rows = _listing(capsys)
    assert "old" not in rows and rows["new"]["documents"] == 2  # the documents stay with the base
    assert bases.main(["delete", "new"]) == 2  # not without --yes
    assert "--yes" in capsys.readouterr().err and "new" in _listing(capsys)
    assert bases.main(["delete", "new", "--yes"]) == 0
    assert "new" not in _listing(capsys)
    assert bases.main(["delete", "default", "--yes"]) == 2
    assert "cannot be deleted" in capsys.readouterr().err


def test_kb_and_kb_name_together_are_refused(home, tmp_path, capsys) -> None:
    assert retrieval_main(["--kb", str(tmp_path / "kb"), "--kb-name", "笔记", "问题"]) == 2
    assert "--kb sets the default base's folder" in capsys.readouterr().err
