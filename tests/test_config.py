"""Settings: defaults, TOML and DOCQA_* variables keep their formats; bad values are one-line ConfigErrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("DOCQA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no ./docqa.toml from the working directory


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "docqa.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_work_out_of_the_box(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings == Settings(data_dir=tmp_path)
    assert settings.kb_path == tmp_path / "kb" and settings.models_path == tmp_path / "models"


def test_toml_then_environment_then_arguments(tmp_path: Path, monkeypatch) -> None:
    path = _toml(tmp_path, '[retrieval]\ntop_k = 7\nrerank = true\n[index]\nivf_nprobe = 9\n'
                           '[generation]\nbackend = "openai"\ntemperature = 0.3\n')
    monkeypatch.setenv("DOCQA_RETRIEVAL__TOP_K", "8")
    monkeypatch.setenv("DOCQA_HOME", str(tmp_path / "home"))
    settings = load_settings(path, generation={"temperature": 0.5})
    assert settings.retrieval.top_k == 8 and settings.retrieval.rerank is True
    assert settings.index.ivf_nprobe == 9
    assert settings.generation.backend == "openai" and settings.generation.temperature == 0.5
    assert settings.data_dir == tmp_path / "home"


def test_the_config_file_is_found_by_variable_or_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    _toml(tmp_path, "[retrieval]\ntop_k = 3\n")
    assert load_settings(data_dir=tmp_path).retrieval.top_k == 3
    named = tmp_path / "other.toml"
    named.write_text("[retrieval]\ntop_k = 4\n", encoding="utf-8")
    monkeypatch.setenv("DOCQA_CONFIG", str(named))
    assert load_settings(data_dir=tmp_path).retrieval.top_k == 4
    monkeypatch.setenv("DOCQA_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml: config file named by DOCQA_CONFIG does not exist"):
        load_settings(data_dir=tmp_path)


def test_the_renamed_sampling_top_k_keeps_its_old_name_in_files_and_variables(tmp_path: Path, monkeypatch) -> None:
    # Sampling's top-k was generation.top_k, the name retrieval uses for passages.
    path = _toml(tmp_path, "[generation]\ntop_k = 12\n[retrieval]\ntop_k = 3\n")
    settings = load_settings(path, data_dir=tmp_path)
    assert (settings.generation.sampling_top_k, settings.retrieval.top_k) == (12, 3)
    monkeypatch.setenv("DOCQA_GENERATION__TOP_K", "7")
    assert load_settings(data_dir=tmp_path / "elsewhere").generation.sampling_top_k == 7
    assert Settings().generation.sampling_top_k == 40 and "top_k" not in Settings().generation.model_dump()


def test_settings_that_moved_section_keep_working(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[retrieval]\nbm25_k1 = 1.2\nbm25_cjk_bigrams = false\n")
    settings = load_settings(path, data_dir=tmp_path)
    assert settings.index.bm25_k1 == 1.2 and settings.index.bm25_cjk_bigrams is False


@pytest.mark.parametrize(("toml", "env", "message"), [
    ('[index]\nindex_type = "annoy"\n', {}, r"index\.index_type: Input should be 'auto', 'flat', 'hnsw', 'ivf' or "
                                            r"'ivfpq' \(got 'annoy'\)"),
    ("", {"DOCQA_EMBEDDER__DTYPE": "int3"}, r"embedder\.dtype: Input should be 'auto', 'float32', 'bfloat16' or "
                                            r"'float16' \(got 'int3'\)"),
    ('[generation]\nbackend = "magic"\n', {}, r"generation\.backend: Input should be 'llama_cpp', 'transformers' or "
                                              r"'openai'"),
    ('[retrieval]\nfusion = "max"\n', {}, r"retrieval\.fusion: Input should be 'convex' or 'rrf'"),
    ('[embedder]\nbackend = "tensorrt"\n', {}, r"embedder\.backend: Input should be 'auto', 'torch' or 'openvino'"),
    ("", {"DOCQA_RETRIEVAL__TOP_K": "many"}, r"retrieval\.top_k: Input should be a valid integer.*\(got 'many'\)"),
    ("[retrieval]\ntop_k = 0\n", {}, r"retrieval\.top_k: Input should be greater than or equal to 1 \(got 0\)"),
    ("[retrieval]\ntopk = 3\n", {}, r"retrieval\.topk: unknown setting"),
    ("[chunking]\nchunk_size = -5\n", {}, r"chunking\.chunk_size: Input should be greater than or equal to 1"),
])
def test_bad_values_are_one_line_errors_naming_the_setting(tmp_path: Path, monkeypatch, toml: str,
                                                          env: dict[str, str], message: str) -> None:
    path = _toml(tmp_path, toml)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(path, data_dir=tmp_path)
    assert "\n" not in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[retrieval\n")
    with pytest.raises(ConfigError, match="docqa.toml: not valid TOML"):
        load_settings(path, data_dir=tmp_path)


def test_sections_validate_assignment_and_copies() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="top_k"):
        settings.retrieval.top_k = 0
    changed = settings.retrieval.replace(top_k=9)
    assert changed.top_k == 9 and settings.retrieval.top_k == 5
