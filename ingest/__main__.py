"""``python -m ingest [PATHS]``: the command lives with the other faces (app/cli/ingest_cli.py), which wire it."""

import sys

from app.cli.ingest_cli import main

sys.exit(main())
