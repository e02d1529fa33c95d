"""One writer at a time; readers never block and always see one consistent generation."""

from __future__ import annotations

import json
import time
from pathlib import Path

from store_fakes import assert_consistent, fake_cli, store_settings

from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
from ingest.store.kb_layout import LOCK_FILE, read_current
from ingest.store.knowledge_base import KnowledgeBase
from ingest.testing.fake_embedder import FakeEmbedder
from ingest.testing.small_corpus import write_config, write_corpus


def _wait_for_lock_holder(kb_dir: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owner = kb_dir / (LOCK_FILE + ".owner")
        if owner.exists() and (pid := owner.read_text().strip()):
            return pid
        time.sleep(0.05)
    raise AssertionError("the first ingest never took the lock")


def test_a_second_ingest_is_refused_while_one_runs(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs", 6)
    config = write_config(tmp_path / "config.toml", batch_size=2)
    kb = tmp_path / "kb"
    args = [str(tmp_path / "docs"), "--kb", str(kb), "--config", str(config), "--json"]
    release = tmp_path / "release"
    # The first run holds its embedding (and the lock) until the second has been refused, however slow the machine.
    first = fake_cli(args, tmp_path, extra=["--hold-until", str(release)])
    pid = _wait_for_lock_holder(kb)
    second = fake_cli(args, tmp_path)
    _, err = second.communicate(timeout=120)
    release.touch()
    assert second.returncode == 2
    assert f"another ingest is running (pid {first.pid}) on {kb}" in err and pid == str(first.pid)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert json.loads(out)["files_added"] == 6
    # The lock goes with its holder: the next run is accepted.
    third = fake_cli(args, tmp_path)
    out, _ = third.communicate(timeout=60)
    assert third.returncode == 0 and json.loads(out)["files_skipped"] == 6


def test_readers_see_consistent_snapshots_during_an_ingest(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    paths = write_corpus(docs, 6)
    settings = store_settings(tmp_path)
    run_ingest(settings, [docs], IngestOptions(), embedder_factory=lambda: FakeEmbedder())
    opened_before = KnowledgeBase.open(settings.kb_path)
    before_texts = sorted(c.text for c in opened_before.iter_chunks())
    for path in paths[:3]:
        path.unlink()
    write_corpus(docs / "more", 10, tag="后")
    # keep_generations = 0: the old generation goes as soon as its grace period (IndexSettings.gc_grace_seconds)
    # is over; within it, a reader that read CURRENT just before the flip can still load all its files.
    config = write_config(tmp_path / "config.toml", batch_size=2, keep_generations=0)
    writer = fake_cli([str(docs), "--kb", str(settings.kb_path), "--config", str(config), "--quiet"], tmp_path,
                      delay=0.05)
    generations_seen = set()
    checks = 0
    while writer.poll() is None or checks == 0:
        kb = assert_consistent(settings.kb_path)
        generations_seen.add(kb.manifest.generation)
        kb.close()
        checks += 1
    assert writer.returncode == 0, writer.communicate()[1]
    kb = assert_consistent(settings.kb_path)
    generations_seen.add(kb.manifest.generation)
    assert generations_seen <= {"gen-000001", "gen-000002"} and read_current(settings.kb_path) == "gen-000002"
    assert checks > 3
    print(f"\n{checks} consistent snapshot reads during one ingest, generations seen: {sorted(generations_seen)}")
    # The reader opened before the ingest still answers from its own snapshot, its files deleted or not.
    assert sorted(c.text for c in opened_before.iter_chunks()) == before_texts
    _, ids = opened_before.index.search(FakeEmbedder().encode_queries([before_texts[0]]), 3)
    assert len(opened_before.get_chunks(ids[0].tolist())) == 3
    assert (settings.kb_path / "generations" / "gen-000001").exists()
    opened_before.close()
    kb.close()
