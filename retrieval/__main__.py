"""``python -m retrieval "问题"``: the command lives with the other faces (app/cli/retrieval_cli.py), which wire
it."""

import sys

from app.cli.retrieval_cli import main

sys.exit(main())
