"""``python tests/ingest_with_fake_embedder.py [--delay S] [--dim N] -- <python -m ingest arguments>``

Runs the real ingest CLI in a subprocess with the HashEmbedder, for the crash, lock and concurrency tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest.__main__ import main  # noqa: E402
from store_fakes import HashEmbedder  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--dim", type=int, default=32)
    ours, rest = parser.parse_known_args()
    if rest[:1] == ["--"]:
        rest = rest[1:]
    sys.exit(main(rest, embedder_factory=lambda: HashEmbedder(ours.dim, ours.delay)))
