"""``python -m ingest [PATHS]``: the command lives with the other faces (app/ingest_cli.py), which wire it."""

import sys

from app.ingest_cli import main

sys.exit(main())
