"""All settings of the system: each layer's sections composed into one typed object with working defaults.

The sections live with the components that use them (``ingest/settings.py``, ``retrieval/settings.py``,
``prompts/settings.py``, ``app/generation/settings.py``); this module composes them and loads them.

Precedence (lowest to highest): defaults < TOML file < environment variables < ``load_settings`` arguments.
- TOML file: the path in ``DOCQA_CONFIG``, else ``./docqa.toml`` if present, else ``<data_dir>/config.toml``.
  Tables are named like the sections of ``Settings`` (``[embedder]``, ``[retrieval]`` ...).
- Environment: ``DOCQA_<SECTION>__<FIELD>``, e.g. ``DOCQA_RETRIEVAL__TOP_K=8``; ``DOCQA_HOME`` sets the data dir.

Values are validated when loaded (types, ranges, modes); a bad one is a ``ConfigError`` with a one-line message.
Nothing else in the project reads environment variables or keeps tunable constants.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tomllib
from platformdirs import user_data_dir
from pydantic import Field, PrivateAttr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from app.generation.settings import PACKAGED_LLM, GenerationSettings
from app.mcp.settings import McpSettings
from app.server.settings import ServerSettings
from ingest.store.base_registry import (
    DEFAULT_BASE,
    KB_SUBDIR,
    UPLOADS_SUBDIR,
    BaseInfo,
    BaseRegistry,
    BaseRegistryError,
)
from ingest.settings import (
    PACKAGED_EMBEDDER,
    ChunkingSettings,
    EmbedderSettings,
    IndexSettings,
    LimitSettings,
    OcrSettings,
    SettingsSection,
    StoreSettings,
)
from prompts.settings import AnswerSettings, DialogueSettings
from retrieval.settings import RetrievalSettings

__all__ = ["PACKAGED_EMBEDDER", "PACKAGED_LLM", "AnswerSettings", "ChunkingSettings", "ConfigError",
           "DialogueSettings", "EmbedderSettings", "GenerationSettings", "IndexSettings", "LimitSettings",
           "OcrSettings", "RetrievalSettings", "ServerSettings", "Settings", "StoreSettings", "load_settings"]

ENV_PREFIX = "DOCQA_"
# Settings that moved to another section; old TOML files and variables naming the old place keep working.
_MOVED = {("retrieval", "bm25_k1"): ("index", "bm25_k1"), ("retrieval", "bm25_b"): ("index", "bm25_b"),
          ("retrieval", "bm25_cjk_bigrams"): ("index", "bm25_cjk_bigrams"),
          # Sampling's top-k had the name retrieval uses for the number of passages.
          ("generation", "top_k"): ("generation", "sampling_top_k")}


def default_data_dir() -> Path:
    return Path(user_data_dir("docqa", appauthor=False))


class ConfigError(ValueError):
    """A setting has an unknown name, a value of the wrong type or out of range; the message says which."""


class Settings(SettingsSection):
    data_dir: Path = Field(default_factory=default_data_dir)
    # The knowledge base every face uses unless told another: a name from ``base_registry(settings).list()``
    # (``--kb-name``); "default" is the base at ``kb_dir``.
    kb_name: str = DEFAULT_BASE
    # The default base's folder. None = <data_dir>/kb.
    kb_dir: Path | None = None
    # The folder of the named base ``kb_name`` picks; set by ``settings_for_base``, not by hand.
    base_dir: Path | None = None
    # The settings before a base's own were applied (``settings_for_base`` starts from them for another base).
    _unbased: Settings | None = PrivateAttr(None)
    # Where model conversions/assemblies are cached. None = <data_dir>/models.
    model_cache_dir: Path | None = None
    # Where files uploaded through the web page or the HTTP API are kept. None = <data_dir>/uploads.
    upload_dir: Path | None = None
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    dialogue: DialogueSettings = Field(default_factory=DialogueSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)

    @model_validator(mode="before")
    @classmethod
    def _move_renamed(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        for (old_section, old_key), (new_section, new_key) in _MOVED.items():
            old = values.get(old_section)
            if isinstance(old, dict) and old_key in old:
                old = values[old_section] = dict(old)
                value = old.pop(old_key)
                new = values.get(new_section)  # the same dict when the setting was renamed within its section
                new = dict(new) if isinstance(new, dict) else ({} if new is None else new.model_dump())
                new.setdefault(new_key, value)
                values[new_section] = new
        return values

    @property
    def kb_path(self) -> Path:
        if self.base_dir:
            return Path(self.base_dir) / KB_SUBDIR
        return Path(self.kb_dir) if self.kb_dir else Path(self.data_dir) / "kb"

    @property
    def models_path(self) -> Path:
        return Path(self.model_cache_dir) if self.model_cache_dir else Path(self.data_dir) / "models"

    @property
    def upload_path(self) -> Path:
        if self.base_dir:
            return Path(self.base_dir) / UPLOADS_SUBDIR
        return Path(self.upload_dir) if self.upload_dir else Path(self.data_dir) / "uploads"


def base_registry(settings: Settings) -> BaseRegistry:
    """The knowledge bases under the data folder (the default one where ``kb_dir``/``upload_dir`` put it)."""
    unbased = settings._unbased or settings
    return BaseRegistry(unbased.data_dir, unbased.kb_path, unbased.upload_path)


def settings_for_base(settings: Settings, name: str) -> Settings:
    """``settings`` for the base called ``name``: its folder, its uploads and its own chunking/OCR settings (a
    base keeps being split the way it was created, whatever the global configuration says later). Raises
    ConfigError naming the known bases when there is no such base or it is damaged."""
    unbased = settings._unbased or settings
    try:
        base: BaseInfo = base_registry(unbased).get(name)
    except BaseRegistryError as exc:
        raise ConfigError(str(exc)) from None
    update: dict[str, Any] = {"kb_name": base.name, "base_dir": base.folder}
    try:
        for section, values in base.settings.items():
            update[section] = getattr(unbased, section).replace(**values)
    except ValidationError as exc:
        raise ConfigError(f"knowledge base {base.name!r}: " + _describe(exc, base.folder)) from None
    chosen = unbased.model_copy(update=update)
    chosen._unbased = unbased
    return chosen


def _config_file(data_dir: Path) -> Path | None:
    named = os.environ.get(ENV_PREFIX + "CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file named by {ENV_PREFIX}CONFIG does not exist")
        return path
    for candidate in (Path("docqa.toml"), data_dir / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


def _describe(exc: ValidationError, path: Path | None) -> str:
    """One line naming every bad setting, its value and what is expected."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown setting")
        else:
            problems.append(f"{where}: {error['msg'].rstrip('.')} (got {error.get('input')!r})")
    origin = f"{path}, " if path else ""
    return f"{'; '.join(problems)} [from {origin}{ENV_PREFIX}* variables or arguments]"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults, then the TOML file, then environment variables, then ``overrides``."""
    if os.environ.get(ENV_PREFIX + "HOME") and "data_dir" not in overrides:
        overrides["data_dir"] = Path(os.environ[ENV_PREFIX + "HOME"]).expanduser()
    path = config_file or _config_file(Path(overrides.get("data_dir") or default_data_dir()))
    if path is not None:
        try:
            with open(path, "rb") as fh:
                tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None

    class _Loaded(BaseSettings, Settings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid",
                                          toml_file=path, nested_model_default_partial_update=True)

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                       file_secret_settings):
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    try:
        loaded = _Loaded(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    settings = Settings.model_validate(loaded.model_dump())
    return settings if settings.kb_name == DEFAULT_BASE else settings_for_base(settings, settings.kb_name)
