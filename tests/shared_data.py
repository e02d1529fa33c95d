"""Where the shared eval sets and seed documents lie: beside the repository (../shared), as in CI."""

from pathlib import Path

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
