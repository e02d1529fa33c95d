"""Start-up stays light: the faces import no heavy model library before they need one (checked in a fresh
interpreter, since this test process has imported everything already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "sentence_transformers", "transformers", "openvino", "llama_cpp", "langchain_core")


def modules_after_import(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["app.cli.ask", "app.cli.ingest_cli", "app.answer.answer_pipeline", "app.wiring"])
def test_faces_import_no_model_library_before_it_is_needed(module):
    loaded = modules_after_import(module)
    assert not [name for name in HEAVY if name in loaded]
