"""``python tests/ingest_with_fake_embedder.py [--delay S] [--dim N] [--die-at STEP] [--hold-until FILE] -- <python -m
ingest args>``

Runs the real ingest CLI in a subprocess with the FakeEmbedder, for the crash, lock and concurrency tests.
``--die-at STEP`` ends the process abruptly (``os._exit``, like SIGKILL: no cleanup runs) when the writer
reaches that step of its commit, to test a crash at every point of the commit deterministically.
``--hold-until FILE`` makes the embedder wait until FILE exists, so a test decides when the run may go on.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest.store.folder_store as folder_store  # noqa: E402
import ingest.store.kb_writer as kb_writer  # noqa: E402
import ingest.store.keyword_index as keyword_index  # noqa: E402
import ingest.store.milvus.milvus_writer as milvus_writer  # noqa: E402
from app.cli.ingest_cli import main  # noqa: E402
from ingest.testing.fake_embedder import FakeEmbedder  # noqa: E402

# Functions called in this order during a commit, and the module whose name for them the run looks up.
COMMIT_STEPS = {"save_index": kb_writer, "build_keyword_index": keyword_index, "write_manifest": kb_writer,
                "_fsync_tree": kb_writer, "fsync_dir": kb_writer, "write_current": kb_writer,
                "collect_garbage": folder_store,
                # The Milvus store's commit: rows are built and inserted, removals marked, then the commit row.
                "chunk_row": milvus_writer, "set_removed": milvus_writer}


def _die_at(step: str, after: bool) -> None:
    module = COMMIT_STEPS[step]
    original = getattr(module, step)

    def dying(*args: object, **kwargs: object) -> object:
        if after:
            original(*args, **kwargs)
        os._exit(137)

    setattr(module, step, dying)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--hold-until", type=Path, help="embed only once this file exists")
    parser.add_argument("--die-at", default="", help="STEP or after:STEP, STEP one of " + ", ".join(COMMIT_STEPS))
    ours, rest = parser.parse_known_args()
    if ours.die_at:
        when, _, step = ours.die_at.rpartition(":")
        _die_at(step, after=when == "after")
    if rest[:1] == ["--"]:
        rest = rest[1:]
    sys.exit(main(rest, embedder_factory=lambda: FakeEmbedder(ours.dim, delay=ours.delay, hold_until=ours.hold_until)))
