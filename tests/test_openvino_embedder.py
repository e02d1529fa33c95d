"""The embedder started from a converted OpenVINO IR without torch: when it is used, when it is refused, and that
it embeds as the full sentence-transformers path does (the tiny BERT here; the packaged model at the end).
Vector agreement on the tiny model over every embedder test is in test_embedder.py ("openvino-lean")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.config import EmbedderSettings
from ingest.embedding.factory import load_embedder
from ingest.embedding.openvino_embedder import OpenVinoEmbedder, load_openvino_embedder
from ingest.embedding.openvino_ir import IR_DIR_NAME, MANIFEST_FILE
from tests.test_embedder import WINDOW_SETTINGS, _build_tiny_model, needs_openvino

pytestmark = needs_openvino
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tiny_model_dir(tmp_path: Path) -> Path:
    return _build_tiny_model(tmp_path / "model")


def _settings(model_dir: Path, **overrides: object) -> EmbedderSettings:
    return EmbedderSettings(model=str(model_dir), **{**WINDOW_SETTINGS, "dtype": "float32", "backend": "openvino",
                                                     **overrides})


def _converted(model_dir: Path, models_dir: Path) -> Path:
    """Load the full path once (it converts and writes the manifest); the IR folder."""
    load_embedder(_settings(model_dir, batch_size=97), models_dir)
    [manifest] = (models_dir / IR_DIR_NAME).glob(f"*/{MANIFEST_FILE}")
    return manifest.parent


def test_nothing_converted_yet_means_the_full_path(tiny_model_dir: Path, tmp_path: Path) -> None:
    assert load_openvino_embedder(_settings(tiny_model_dir), tmp_path) is None
    assert load_openvino_embedder(_settings(tiny_model_dir, backend="torch"), tmp_path) is None


def test_a_missing_garbled_or_foreign_manifest_means_the_full_path(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _converted(tiny_model_dir, tmp_path)
    assert isinstance(load_openvino_embedder(_settings(tiny_model_dir), tmp_path), OpenVinoEmbedder)
    manifest = folder / MANIFEST_FILE
    original = manifest.read_text(encoding="utf-8")

    manifest.write_text(original[: len(original) // 2], encoding="utf-8")  # truncated
    assert load_openvino_embedder(_settings(tiny_model_dir), tmp_path) is None
    # A tokenizer.json that reads the probe text differently from the model's own tokenizer.
    changed = json.loads(original)
    changed["probe_ids"] = [1, 2, 3]
    manifest.write_text(json.dumps(changed), encoding="utf-8")
    assert load_openvino_embedder(_settings(tiny_model_dir), tmp_path) is None
    manifest.unlink()
    assert load_openvino_embedder(_settings(tiny_model_dir), tmp_path) is None

    # A full load writes it again.
    load_embedder(_settings(tiny_model_dir, batch_size=98), tmp_path)
    assert json.loads(manifest.read_text(encoding="utf-8")) == json.loads(original)


def test_changed_model_files_are_never_run_from_the_old_ir(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _converted(tiny_model_dir, tmp_path)
    weights = next(tiny_model_dir.rglob("model.safetensors"))
    later = folder.stat().st_mtime_ns + 10**9
    os.utime(weights, ns=(later, later))
    assert load_openvino_embedder(_settings(tiny_model_dir), tmp_path) is None


def test_a_later_process_embeds_without_importing_torch(tiny_model_dir: Path, tmp_path: Path) -> None:
    _converted(tiny_model_dir, tmp_path)
    texts = ["w1 w2 w3", " ".join(f"w{i}" for i in range(20))]
    expected = load_embedder(_settings(tiny_model_dir), tmp_path).encode_passages(texts)
    script = f"""
import json, sys
from app.config import EmbedderSettings
from ingest.embedding.factory import load_embedder
settings = EmbedderSettings(**json.loads({_settings(tiny_model_dir).model_dump_json()!r}))
vectors = load_embedder(settings, {str(tmp_path)!r}).encode_passages({texts!r})
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
print(json.dumps({{"heavy": heavy, "vectors": vectors.tolist()}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    np.testing.assert_allclose(np.array(result["vectors"]), expected, atol=1e-5)


@pytest.mark.slow
def test_packaged_model_starts_lean_with_the_same_vectors(real_embedder, real_embedder_settings,
                                                          packaged_models_dir: Path) -> None:
    lean = load_openvino_embedder(real_embedder_settings, packaged_models_dir)
    assert isinstance(lean, OpenVinoEmbedder), "the app's first load should have left the IR and its manifest"
    texts = ["大熊猫主要以竹子为食，每天要吃十几个小时。", "Retrieval-augmented generation cites its sources.",
             "二〇二四年的年度报告显示营收增长了 12.5%。" * 40]  # the last one spans two windows
    np.testing.assert_allclose(lean.encode_passages(texts), real_embedder.encode_passages(texts), atol=1e-4)
    np.testing.assert_allclose(lean.encode_queries(texts[:2]), real_embedder.encode_queries(texts[:2]), atol=1e-4)
    for ours, theirs in zip(lean.token_embeddings(texts, is_query=False),
                            real_embedder.token_embeddings(texts, is_query=False)):
        assert ours.shape == theirs.shape
        assert np.sum(ours * theirs, axis=1).min() > 0.999
