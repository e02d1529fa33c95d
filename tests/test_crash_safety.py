"""A crash, SIGKILL or Ctrl-C at any point of an ingest leaves the previous knowledge base usable and consistent,
and the next run cleans up and completes the work (re-using finished embeddings)."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from store_fakes import assert_consistent, fake_cli, store_settings

from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest
from ingest.store.kb_layout import (
    EMBEDDING_CACHE_FILE,
    INCOMPLETE_PREFIX,
    LOCK_FILE,
    generation_number,
    generations_dir,
    read_current,
)
from ingest.testing.fake_embedder import FakeEmbedder
from ingest.testing.small_corpus import write_config, write_corpus


def _snapshot(kb_dir: Path) -> dict[str, list[str]]:
    kb = assert_consistent(kb_dir)
    if kb is None:
        return {}
    texts: dict[str, list[str]] = {}
    for chunk in kb.iter_chunks():
        texts.setdefault(chunk.doc_id, []).append(chunk.text)
    result = {doc.path: texts.get(doc.content_hash, []) for doc in kb.documents()}
    kb.close()
    return result


def _clean_result(tmp_path: Path, docs: Path) -> dict[str, list[str]]:
    """What a single uninterrupted run makes of ``docs`` in a fresh knowledge base."""
    settings = store_settings(tmp_path / "reference")
    run_ingest(settings, [docs], IngestOptions(), embedder_factory=lambda: FakeEmbedder())
    return _snapshot(settings.kb_path)


def _no_leftovers(kb_dir: Path) -> None:
    live = generation_number(read_current(kb_dir))
    for entry in generations_dir(kb_dir).iterdir():
        assert not entry.name.startswith(INCOMPLETE_PREFIX), entry
        assert generation_number(entry.name) <= live, entry
    assert not list(kb_dir.glob("CURRENT.tmp-*"))


def _setup(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, list[str]]]:
    """A committed knowledge base of a first corpus, then the corpus changed (edit, delete, add)."""
    docs = tmp_path / "docs"
    paths = write_corpus(docs, 8)
    settings = store_settings(tmp_path)
    run_ingest(settings, [docs], IngestOptions(), embedder_factory=lambda: FakeEmbedder())
    before = _snapshot(settings.kb_path)
    paths[0].write_text("改写后的第一份文件，讲的是长上下文外推。\n\n第二段讲位置插值。", encoding="utf-8")
    paths[1].unlink()
    write_corpus(docs / "new", 12, tag="新")
    config = write_config(tmp_path / "config.toml", keep_generations=0, gc_grace_seconds=0)
    return docs, settings.kb_path, config, before


def _run(args: list[str], tmp_path: Path, **kwargs: object) -> tuple[int, str, str]:
    proc = fake_cli(args, tmp_path, **kwargs)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


# Before/after each distinct state of the commit: nothing written, index written, BM25 written, manifest written
# (folder still .incomplete), folder renamed but CURRENT not flipped, CURRENT flipped, old generations half deleted.
STEPS = ["save_index", "build_keyword_index", "write_manifest", "fsync_dir", "after:fsync_dir", "write_current",
         "after:write_current", "after:collect_garbage"]


@pytest.mark.parametrize("step", STEPS)
def test_death_at_each_commit_step_keeps_a_consistent_base(tmp_path: Path, step: str) -> None:
    docs, kb_dir, config, before = _setup(tmp_path)
    expected = _clean_result(tmp_path, docs)
    args = [str(docs), "--kb", str(kb_dir), "--config", str(config), "--json"]
    code, _, err = _run(args, tmp_path, extra=["--die-at", step])
    assert code == 137, err
    flipped = step in ("after:write_current", "after:collect_garbage")
    assert _snapshot(kb_dir) == (expected if flipped else before)
    code, out, err = _run(args, tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert report["committed"] is (not flipped)
    assert _snapshot(kb_dir) == expected
    _no_leftovers(kb_dir)


def _wait_until_locked(kb_dir: Path, proc: subprocess.Popen) -> None:
    """Until ``proc`` holds the writer lock (its pid is in the lock owner file), i.e. its ingest has begun."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if (kb_dir / (LOCK_FILE + ".owner")).read_text().strip() == str(proc.pid):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)


def _cached_vectors(kb_dir: Path) -> int:
    path = kb_dir / EMBEDDING_CACHE_FILE
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        conn.close()


def test_sigkill_at_random_moments_then_the_next_run_completes(tmp_path: Path) -> None:
    docs, kb_dir, config, before = _setup(tmp_path)
    expected = _clean_result(tmp_path, docs)
    args = [str(docs), "--kb", str(kb_dir), "--config", str(config), "--json"]
    rng = random.Random(1234)
    kills = 0
    for _ in range(5):
        proc = fake_cli(args, tmp_path, delay=0.3)
        _wait_until_locked(kb_dir, proc)
        # ~10 batches of 0.3 s to embed at first, fewer each time (finished ones are cached); the commit takes a
        # fraction of a second: the kills land during scanning, embedding, commit or just after.
        time.sleep(rng.uniform(0.0, 1.2))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=120)
        assert _snapshot(kb_dir) in (before, expected)
        if _snapshot(kb_dir) == expected:
            break
    assert kills >= 3
    code, out, err = _run(args, tmp_path)
    assert code == 0, err
    assert _snapshot(kb_dir) == expected
    _no_leftovers(kb_dir)


def test_killed_during_embedding_keeps_finished_batches(tmp_path: Path) -> None:
    docs, kb_dir, config, before = _setup(tmp_path)
    args = [str(docs), "--kb", str(kb_dir), "--config", str(config), "--json"]
    cached_before = _cached_vectors(kb_dir)
    proc = fake_cli(args, tmp_path, delay=0.2)
    deadline = time.monotonic() + 60
    while _cached_vectors(kb_dir) < cached_before + 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _snapshot(kb_dir) == before
    cached = _cached_vectors(kb_dir) - cached_before
    assert cached >= 8
    code, out, err = _run(args, tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert report["passages_cached"] >= cached
    assert report["passages_embedded"] + report["passages_cached"] >= report["chunks_added"]


def test_ctrl_c_during_embedding_exits_cleanly_and_changes_nothing(tmp_path: Path) -> None:
    docs, kb_dir, config, before = _setup(tmp_path)
    args = [str(docs), "--kb", str(kb_dir), "--config", str(config)]
    proc = fake_cli(args, tmp_path, delay=0.2)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(INCOMPLETE_PREFIX) for p in generations_dir(kb_dir).iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert _snapshot(kb_dir) == before
    assert not any(p.name.startswith(INCOMPLETE_PREFIX) for p in generations_dir(kb_dir).iterdir())


@pytest.mark.slow
def test_real_ingest_killed_during_embedding_then_completed(tmp_path: Path, real_embedder,
                                                            packaged_models_dir: Path) -> None:
    """``python -m ingest`` with the real embedder, SIGKILLed once some batches are cached, then run again."""
    import os
    import shutil
    import subprocess
    import sys

    from store_fakes import REPO

    from app.cli.ingest_cli import SAMPLE_CORPUS

    docs = tmp_path / "docs"  # two files (~12 chunks): each embedding pass costs seconds per batch here
    docs.mkdir()
    for name in ("vector_search_faq.txt", "decoding_parameters.md"):
        shutil.copy(SAMPLE_CORPUS / name, docs / name)
    kb_dir = tmp_path / "kb"
    config = tmp_path / "config.toml"
    config.write_text(f'model_cache_dir = "{packaged_models_dir}"\n'
                      '[embedder]\nbatch_size = 2\npassages_per_call = 2\nnum_threads = 2\n',
                      encoding="utf-8")
    env = {**os.environ, "DOCQA_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "ingest", str(docs), "--kb", str(kb_dir), "--config", str(config),
               "--json"]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _cached_vectors(kb_dir) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert read_current(kb_dir) is None  # the first run never committed: no knowledge base, and no damage
    cached = _cached_vectors(kb_dir)
    assert cached >= 4
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passages_cached"] >= cached and report["passages_embedded"] > 0
    kb = assert_consistent(kb_dir)
    assert kb.manifest.embedder == real_embedder.name and kb.manifest.n_chunks == report["chunks_total"]
    _no_leftovers(kb_dir)
    kb.close()
