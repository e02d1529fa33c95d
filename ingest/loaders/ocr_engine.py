"""Text recognition on page images with RapidOCR (PP-OCR models in ONNX), offline.

Two packagings are supported, both carrying their models inside the wheel: ``rapidocr`` 3.x (PP-OCRv6 small
detection + recognition) and ``rapidocr_onnxruntime`` 1.4 (PP-OCRv4). The model paths are always given
explicitly as the files inside the installed package, so nothing is ever looked up or downloaded. Which one
"auto" picks, and why, is in bench/RESULTS_FORMATS.md.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ingest.settings import OcrSettings


@dataclass
class OcrLine:
    """One recognised line: its text, confidence, and bounding box (x0, y0, x1, y1) in image pixels."""

    text: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float


class OcrUnavailable(Exception):
    """No OCR engine is installed (the "ocr" extra), or OCR is switched off."""


class OcrEngine(Protocol):
    name: str

    def recognise(self, image: np.ndarray) -> list[OcrLine]:
        """Lines found in an RGB ``uint8`` image of shape (height, width, 3)."""
        ...


def _lines(boxes, texts, scores) -> list[OcrLine]:
    out = []
    for box, text, score in zip(boxes, texts, scores):
        pts = np.asarray(box, dtype=np.float32).reshape(-1, 2)
        out.append(OcrLine(str(text), float(score), float(pts[:, 0].min()), float(pts[:, 1].min()),
                           float(pts[:, 0].max()), float(pts[:, 1].max())))
    return out


class _RapidOcrV3:
    """``rapidocr`` 3.x with its bundled PP-OCRv6 small models."""

    name = "rapidocr"

    def __init__(self, settings: OcrSettings) -> None:
        import rapidocr
        models = Path(rapidocr.__file__).parent / "models"
        params = {
            "Global.log_level": "error",
            # Scanned pages are upright; the direction classifier costs time on every line for nothing.
            "Global.use_cls": False,
            "Global.text_score": 0.0,  # filtering is ours (OcrSettings.min_confidence)
            "Det.model_path": str(models / "PP-OCRv6_det_small.onnx"),
            "Rec.model_path": str(models / "PP-OCRv6_rec_small.onnx"),
            "Cls.model_path": str(models / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
        }
        if settings.num_threads:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = settings.num_threads
        for path in (params["Det.model_path"], params["Rec.model_path"]):
            if not Path(path).is_file():  # a repackaged wheel without models would otherwise try to download
                raise OcrUnavailable(f"rapidocr model file missing: {path}")
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self._engine = rapidocr.RapidOCR(params=params)

    def recognise(self, image: np.ndarray) -> list[OcrLine]:
        out = self._engine(image, use_cls=False)
        if out is None or out.boxes is None or out.txts is None:
            return []
        return _lines(out.boxes, out.txts, out.scores)


class _RapidOcrV1:
    """``rapidocr_onnxruntime`` 1.4 with its bundled PP-OCRv4 models."""

    name = "rapidocr_onnxruntime"

    def __init__(self, settings: OcrSettings) -> None:
        import rapidocr_onnxruntime
        models = Path(rapidocr_onnxruntime.__file__).parent / "models"
        kwargs: dict[str, object] = {
            "det_model_path": str(models / "ch_PP-OCRv4_det_infer.onnx"),
            "rec_model_path": str(models / "ch_PP-OCRv4_rec_infer.onnx"),
            "cls_model_path": str(models / "ch_ppocr_mobile_v2.0_cls_infer.onnx"),
            "text_score": 0.0,
        }
        if settings.num_threads:
            kwargs["intra_op_num_threads"] = settings.num_threads
        self._engine = rapidocr_onnxruntime.RapidOCR(**kwargs)

    def recognise(self, image: np.ndarray) -> list[OcrLine]:
        result, _ = self._engine(image, use_cls=False)
        if not result:
            return []
        return _lines([r[0] for r in result], [r[1] for r in result], [r[2] for r in result])


_ENGINES = {"rapidocr": _RapidOcrV3, "rapidocr_onnxruntime": _RapidOcrV1}
_loaded: dict[tuple, OcrEngine] = {}
_lock = threading.Lock()


def installed_engine(settings: OcrSettings) -> str | None:
    """The engine name ``settings`` selects that is installed here, or None."""
    if settings.engine == "off":
        return None
    names = ["rapidocr", "rapidocr_onnxruntime"] if settings.engine == "auto" else [settings.engine]
    return next((n for n in names if importlib.util.find_spec(n) is not None), None)


def load_ocr_engine(settings: OcrSettings) -> OcrEngine:
    """The engine ``settings`` selects, loaded once per process. Raises ``OcrUnavailable``."""
    name = installed_engine(settings)
    if name is None:
        raise OcrUnavailable("OCR is off (ocr.engine)" if settings.engine == "off" else
                             "no OCR engine installed (install the 'ocr' extra)")
    key = (name, settings.num_threads)
    with _lock:
        if key not in _loaded:
            try:
                _loaded[key] = _ENGINES[name](settings)
            except OcrUnavailable:
                raise
            except Exception as exc:  # a broken install: say so instead of failing every file differently
                raise OcrUnavailable(f"{name} failed to load ({type(exc).__name__}: {exc})") from exc
        return _loaded[key]
