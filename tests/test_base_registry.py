"""Several named knowledge bases under one data folder (ingest/store/base_registry.py, app/config.py)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from app.config import ConfigError, base_registry, load_settings, settings_for_base
from ingest.store.base_registry import DEFAULT_BASE, BaseRegistry, BaseRegistryError, validate_base_name
from ingest.store.kb_lock import WriterLock


@pytest.fixture()
def registry(tmp_path: Path) -> BaseRegistry:
    return BaseRegistry(tmp_path)


@pytest.mark.parametrize("bad, says", [
    ("a/b", "only letters"), ("..\\x", "only letters"), ("..", "only letters"), (".hidden", "only letters"),
    ("a.b", "only letters"), ("c:", "only letters"), ("x" * 300, "300 characters"), ("", "cannot be empty"),
    ("   ", "cannot be empty"), ("bell\x07", "control"), ("evil\x1b]0;title\x07", "control"),
    ("file\u202egnp.exe", "invisible formatting"), ("two  spaces", "only letters"), ("-dash", "only letters"),
    (42, "must be text"),
])
def test_bad_names_are_refused_with_what_is_wrong(registry: BaseRegistry, bad, says) -> None:
    with pytest.raises(BaseRegistryError, match=says):
        registry.create(bad)
    assert [b.name for b in registry.list()] == [DEFAULT_BASE]


@pytest.mark.parametrize("good", ["work", "工作笔记", "Project-2026_a", "个人 资料", "Ｗork"])
def test_good_names(good: str) -> None:
    assert validate_base_name(f"  {good} ") == good


def test_create_rename_delete(registry: BaseRegistry) -> None:
    work = registry.create("work", {"chunking": {"chunk_size": 300}})
    assert work.kb_dir.is_dir() and work.upload_dir.is_dir()
    registry.create("个人")
    assert [b.name for b in registry.list()] == [DEFAULT_BASE, "work", "个人"]
    assert registry.get("WORK").name == "work"  # names are matched without letter case

    with pytest.raises(BaseRegistryError, match="already exists"):
        registry.create("Work")
    with pytest.raises(BaseRegistryError, match="already exists"):
        registry.rename("个人", "work")
    renamed = registry.rename("work", "office")
    assert renamed.folder == work.folder  # the folder (and every path the catalog recorded) stays
    assert renamed.settings == {"chunking": {"chunk_size": 300}}
    with pytest.raises(BaseRegistryError, match="no knowledge base named 'work'.*known: default, office, 个人"):
        registry.get("work")

    registry.delete("office")
    assert not work.folder.exists()
    assert [b.name for b in registry.list()] == [DEFAULT_BASE, "个人"]


def test_the_default_base_keeps_the_one_base_layout(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    default = base_registry(settings).get(DEFAULT_BASE)
    assert default.kb_dir == settings.kb_path == tmp_path / "kb"
    assert default.upload_dir == settings.upload_path == tmp_path / "uploads"
    with pytest.raises(BaseRegistryError, match="cannot be renamed"):
        base_registry(settings).rename(DEFAULT_BASE, "other")
    with pytest.raises(BaseRegistryError, match="cannot be deleted"):
        base_registry(settings).delete(DEFAULT_BASE)


def test_settings_for_a_named_base(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    base_registry(settings).create("scans", {"chunking": {"chunk_size": 250, "chunk_overlap": 20},
                                             "ocr": {"engine": "off"}})
    chosen = load_settings(data_dir=tmp_path, kb_name="scans")
    assert chosen.kb_path == tmp_path / "bases" / "scans" / "kb"
    assert chosen.upload_path == tmp_path / "bases" / "scans" / "uploads"
    assert (chosen.chunking.chunk_size, chosen.chunking.chunk_overlap, chosen.ocr.engine) == (250, 20, "off")
    # From a named base back to the default one, and the registry seen from either is the same.
    back = settings_for_base(chosen, DEFAULT_BASE)
    assert back.kb_path == tmp_path / "kb" and back.chunking.chunk_size == settings.chunking.chunk_size
    assert [b.name for b in base_registry(chosen).list()] == [DEFAULT_BASE, "scans"]
    with pytest.raises(ConfigError, match="no knowledge base named 'nope'"):
        load_settings(data_dir=tmp_path, kb_name="nope")
    with pytest.raises(BaseRegistryError, match="can set only chunking, ocr"):
        base_registry(settings).create("x", {"retrieval": {"top_k": 3}})


def test_a_bad_base_setting_is_one_line(tmp_path: Path) -> None:
    base_registry(load_settings(data_dir=tmp_path)).create("odd", {"chunking": {"chunk_size": -5}})
    with pytest.raises(ConfigError, match="knowledge base 'odd'.*chunk_size"):
        load_settings(data_dir=tmp_path, kb_name="odd")


@pytest.mark.parametrize("damage", ["garbage", "delete", "no name", "bad settings"])
def test_a_damaged_base_is_named_and_the_others_still_work(registry: BaseRegistry, damage: str) -> None:
    broken = registry.create("broken")
    registry.create("fine")
    path = broken.folder / "base.json"
    if damage == "garbage":
        path.write_bytes(b"\x00\xff{not json")
    elif damage == "delete":
        path.unlink()
    elif damage == "no name":
        path.write_text("{}", encoding="utf-8")
    else:
        path.write_text('{"name": "broken", "settings": {"retrieval": {}}}', encoding="utf-8")
    listed = {b.name: b for b in registry.list()}
    assert registry.get("fine").problem == ""
    damaged = [b for b in listed.values() if b.problem]
    assert len(damaged) == 1 and str(path) in damaged[0].problem and "damaged" in damaged[0].problem
    # Asked for by its name, the damaged base (found by the folder that name gets) says what is wrong with it.
    with pytest.raises(BaseRegistryError, match="knowledge base damaged"):
        registry.get("broken")
    # Nothing of the damaged base was removed: its documents are still there to recover.
    assert broken.kb_dir.is_dir()


def _hold_lock(kb_dir: str, held, release) -> None:
    with WriterLock(Path(kb_dir)):
        held.set()
        release.wait(30)


def test_a_base_being_ingested_is_not_deleted(registry: BaseRegistry) -> None:
    base = registry.create("busy")
    held, release = multiprocessing.Event(), multiprocessing.Event()
    writer = multiprocessing.Process(target=_hold_lock, args=(str(base.kb_dir), held, release))
    writer.start()
    try:
        assert held.wait(30)
        with pytest.raises(BaseRegistryError, match="cannot be deleted now: another ingest is running"):
            registry.delete("busy")
    finally:
        release.set()
        writer.join(30)
    assert registry.get("busy").folder.is_dir()
    registry.delete("busy")


def test_an_interrupted_delete_or_create_is_finished_later(registry: BaseRegistry) -> None:
    registry.create("a")
    (registry.root / ".deleting-old-123").mkdir()
    (registry.root / ".creating-new-456").mkdir()
    assert [b.name for b in registry.list()] == [DEFAULT_BASE, "a"]  # never listed
    registry.create("b")
    assert not (registry.root / ".deleting-old-123").exists()
    assert not (registry.root / ".creating-new-456").exists()


def _create(root: str, name: str, results) -> None:
    try:
        BaseRegistry(Path(root)).create(name)
        results.put("created")
    except BaseRegistryError as exc:
        results.put(str(exc))


def test_two_processes_creating_the_same_name(tmp_path: Path) -> None:
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_create, args=(str(tmp_path), name, results))
             for name in ("shared", "SHARED", "shared")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes.count("created") == 1
    assert all("already exists" in o for o in outcomes if o != "created")
    assert len(list((tmp_path / "bases").glob("shared*"))) == 1
