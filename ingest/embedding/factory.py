"""``load_embedder``: the embedder for the settings, started from a converted OpenVINO IR when there is one, else
through sentence-transformers (its encoder run by PyTorch or OpenVINO). Kept apart from the ``Embedder`` interface
(embedder.py) so that the backends, which import the interface, are not imported by it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ingest.embedding.embedder import Embedder, EmbedderError
from ingest.settings import EmbedderSettings

_LOCK = threading.Lock()
_EMBEDDERS: dict[tuple[str, str], Embedder] = {}


def load_embedder(settings: EmbedderSettings, models_dir: Path) -> Embedder:
    """The embedder for ``settings``, made once per settings and models folder per process: started from a
    converted OpenVINO IR when there is one, else through sentence-transformers."""
    from ingest.embedding.openvino_embedder import load_openvino_embedder
    from ingest.embedding.openvino_ir import BACKENDS

    if settings.backend not in BACKENDS:
        raise EmbedderError(f"embedding model {settings.model!r}: unknown embedder backend {settings.backend!r} "
                            f"(use one of {', '.join(BACKENDS)})")
    if settings.backend == "openvino" and settings.device != "cpu":
        raise EmbedderError(f"embedding model {settings.model!r}: the openvino backend runs on the CPU only, "
                            f"not on device {settings.device!r}")
    key = (settings.model_dump_json(), str(models_dir))
    with _LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = load_openvino_embedder(settings, Path(models_dir))
            if embedder is None:
                from ingest.embedding.sentence_transformer_embedder import (
                    load_sentence_transformer_embedder,
                )

                embedder = load_sentence_transformer_embedder(settings, Path(models_dir))
            _EMBEDDERS[key] = embedder
        return embedder
