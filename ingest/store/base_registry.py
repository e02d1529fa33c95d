"""Several named knowledge bases under one data folder: their names, folders and the settings that belong to a base.

data_dir/kb/, data_dir/uploads/      the base named "default" (the layout of one-base installs, kept as it was)
data_dir/bases/<folder>/base.json    a named base: {"name", "created", "settings": {"chunking": {...}, "ocr": {...}}}
data_dir/bases/<folder>/kb/          its knowledge-base store (generations, CURRENT, lock: see kb_layout)
data_dir/bases/<folder>/uploads/     the originals uploaded into it

A base's folder never changes after it is created, so a rename only rewrites base.json (atomically) and the paths
the catalog recorded for its uploads stay true. Each base has its own base.json, so a damaged one costs that base
alone: the others are listed and work. Creating and renaming hold a registry lock, so two clients cannot create the
same name twice; a delete is refused while an ingest holds the base's writer lock, and moves the folder out of the
listing with one rename before removing it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from ingest.store.kb_layout import fsync_dir
from ingest.store.kb_lock import KnowledgeBaseLockedError, WriterLock

DEFAULT_BASE = "default"
BASES_DIR = "bases"
BASE_FILE = "base.json"
KB_SUBDIR = "kb"
UPLOADS_SUBDIR = "uploads"
_REGISTRY_LOCK = ".registry.lock"
_DELETING_PREFIX = ".deleting-"
_CREATING_PREFIX = ".creating-"
# Settings sections a base may set for itself: how its documents are split and read. A base chunked one way must
# keep being chunked that way, whatever the global configuration says later.
BASE_SECTIONS = ("chunking", "ocr")
MAX_NAME_CHARS = 64
# Letters and digits of any script, with '-', '_' and single inner spaces: names are typed in flags
# (--kb-name), URLs and model ids ("docqa/NAME"), so nothing that a shell, a path or a URL would read specially.
_NAME_RE = re.compile(r"^[^\W_](?:[\w-]| (?! ))*$")
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class BaseRegistryError(Exception):
    """A base name is invalid, unknown or taken, or a base cannot be created, renamed or deleted; the message
    says which and what to do."""


class InvalidBaseNameError(BaseRegistryError):
    """The text cannot be a knowledge-base name (the message says why)."""


class UnknownBaseError(BaseRegistryError):
    """No knowledge base has that name (the message names the known ones)."""


class BaseTakenError(BaseRegistryError):
    """Another knowledge base already has that name."""


@dataclass
class BaseInfo:
    name: str
    # The base's own folder (None for the default base, which keeps the one-base layout).
    folder: Path | None
    kb_dir: Path
    upload_dir: Path
    created: float = 0.0
    # Per-base settings: {"chunking": {...}, "ocr": {...}}.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Why this base cannot be used (its base.json is damaged), "" when it can.
    problem: str = ""


def validate_base_name(name: object) -> str:
    """The name, normalised (NFC, surrounding spaces removed), or BaseRegistryError saying what is wrong."""
    if not isinstance(name, str):
        raise InvalidBaseNameError("a knowledge-base name must be text")
    clean = unicodedata.normalize("NFC", name).strip()
    shown = ascii(clean[:40]) + ("…" if len(clean) > 40 else "")
    if not clean:
        raise InvalidBaseNameError("a knowledge-base name cannot be empty")
    if len(clean) > MAX_NAME_CHARS:
        raise InvalidBaseNameError(f"knowledge-base name {shown} is {len(clean)} characters long; "
                                f"use at most {MAX_NAME_CHARS}")
    if any(unicodedata.category(c)[0] == "C" for c in clean):
        raise InvalidBaseNameError(f"knowledge-base name {shown} holds control or invisible formatting characters")
    if not _NAME_RE.match(clean):
        raise InvalidBaseNameError(f"knowledge-base name {shown} may use only letters, digits, '-', '_' and single "
                                "spaces, starting with a letter or digit (no '/', '\\', '.' or ':')")
    return clean


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


class BaseRegistry:
    """The knowledge bases under ``data_dir``. ``default_kb_dir`` / ``default_upload_dir`` place the default base
    (a configured ``kb_dir`` moves it)."""

    def __init__(self, data_dir: Path, default_kb_dir: Path | None = None, default_upload_dir: Path | None = None):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / BASES_DIR
        self._default = BaseInfo(DEFAULT_BASE, None, Path(default_kb_dir or self.data_dir / "kb"),
                                 Path(default_upload_dir or self.data_dir / "uploads"))

    # -- reading -------------------------------------------------------------------------------------------------

    def list(self) -> list[BaseInfo]:
        """The default base first, then the named ones by name; damaged ones are listed with their ``problem``."""
        named = []
        try:
            folders = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except FileNotFoundError:
            folders = []
        except OSError as exc:
            raise BaseRegistryError(f"{self.root}: cannot list the knowledge bases ({exc.strerror or exc})") from None
        for folder in folders:
            named.append(self._read(folder))
        return [self._default, *sorted(named, key=lambda b: b.name.casefold())]

    def get(self, name: str) -> BaseInfo:
        """The base called ``name`` (any letter case), or BaseRegistryError naming the known bases."""
        wanted = validate_base_name(name)
        if _same(wanted, DEFAULT_BASE):
            return self._default
        bases = self.list()
        for base in bases:
            if _same(base.name, wanted):
                if base.problem:
                    raise BaseRegistryError(base.problem)
                return base
        damaged = next((b for b in bases if b.problem and b.folder is not None and b.folder.name == _slug(wanted)),
                       None)
        if damaged is not None:  # its name cannot be read, but its folder is the one this name would have
            raise BaseRegistryError(damaged.problem)
        known = ", ".join(b.name for b in bases if not b.problem)
        raise UnknownBaseError(f"no knowledge base named {wanted!r} (known: {known}); create it with "
                                f"`python -m ingest --kb-name {wanted!r} PATH`, or on the page or the HTTP API")

    def has(self, name: str) -> bool:
        """Whether a base called ``name`` exists (any letter case, the name normalised as ``create`` would)."""
        wanted = validate_base_name(name)
        return any(_same(base.name, wanted) for base in self.list())

    def _read(self, folder: Path) -> BaseInfo:
        kb_dir, upload_dir = folder / KB_SUBDIR, folder / UPLOADS_SUBDIR
        path = folder / BASE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            name = validate_base_name(data["name"])
            settings = data.get("settings") or {}
            if not isinstance(settings, dict) or any(k not in BASE_SECTIONS or not isinstance(v, dict)
                                                     for k, v in settings.items()):
                raise ValueError("its settings are not {section: {field: value}} for " + ", ".join(BASE_SECTIONS))
            return BaseInfo(name, folder, kb_dir, upload_dir, float(data.get("created") or 0.0), settings)
        except (OSError, ValueError, KeyError, TypeError, BaseRegistryError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            return BaseInfo(f"?{folder.name}", folder, kb_dir, upload_dir,
                            problem=(f"{path}: knowledge base damaged ({reason}); restore the file, or write "
                                     f'{{"name": "{folder.name}"}} into it to use the base again'))

    # -- changing ------------------------------------------------------------------------------------------------

    def _lock(self) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / _REGISTRY_LOCK, timeout=10)

    def create(self, name: str, settings: dict[str, dict[str, Any]] | None = None) -> BaseInfo:
        name = validate_base_name(name)
        settings = dict(settings or {})
        unknown = [k for k in settings if k not in BASE_SECTIONS]
        if unknown:
            raise BaseRegistryError(f"a knowledge base can set only {', '.join(BASE_SECTIONS)}, not "
                                    f"{', '.join(unknown)}")
        with self._lock():
            self._clean_leftovers()
            self._refuse_taken(name)
            folder = self._new_folder(name)
            tmp = self.root / f"{_CREATING_PREFIX}{folder.name}-{os.getpid()}"
            tmp.mkdir()
            (tmp / KB_SUBDIR).mkdir()
            (tmp / UPLOADS_SUBDIR).mkdir()
            _write_json(tmp / BASE_FILE, {"name": name, "created": time.time(), "settings": settings})
            os.replace(tmp, folder)  # the base appears whole or not at all
            fsync_dir(self.root)
            return self._read(folder)

    def rename(self, name: str, new_name: str) -> BaseInfo:
        new_name = validate_base_name(new_name)
        with self._lock():
            base = self.get(name)
            if base.folder is None:
                raise BaseRegistryError(f"the {DEFAULT_BASE!r} knowledge base cannot be renamed")
            if not _same(base.name, new_name):
                self._refuse_taken(new_name)
            self._rewrite(base, name=new_name)
            return self._read(base.folder)

    def update_settings(self, name: str, settings: dict[str, dict[str, Any]]) -> BaseInfo:
        """Replace the base's own settings; the documents already ingested keep their chunks until re-indexed."""
        unknown = [k for k in settings if k not in BASE_SECTIONS]
        if unknown:
            raise BaseRegistryError(f"a knowledge base can set only {', '.join(BASE_SECTIONS)}, not "
                                    f"{', '.join(unknown)}")
        with self._lock():
            base = self.get(name)
            if base.folder is None:
                raise BaseRegistryError(f"the {DEFAULT_BASE!r} knowledge base takes its settings from the "
                                        "configuration file")
            self._rewrite(base, settings=settings)
            return self._read(base.folder)

    def delete(self, name: str) -> None:
        """Remove a named base with its documents and uploads; refused while an ingest is writing it."""
        with self._lock():
            base = self.get(name)
            if base.folder is None:
                raise BaseRegistryError(f"the {DEFAULT_BASE!r} knowledge base cannot be deleted; delete its "
                                        "documents instead")
            try:
                with WriterLock(base.kb_dir):
                    gone = self.root / f"{_DELETING_PREFIX}{base.folder.name}-{os.getpid()}"
                    os.replace(base.folder, gone)  # out of every listing at once
                    fsync_dir(self.root)
            except KnowledgeBaseLockedError as exc:
                raise BaseRegistryError(f"knowledge base {base.name!r} cannot be deleted now: {exc}") from None
        shutil.rmtree(gone, ignore_errors=True)

    def _clean_leftovers(self) -> None:
        """Finish what a crash interrupted: a delete (its folder is already out of every listing) or a create
        (never listed). Called under the registry lock, so no create is in progress."""
        for leftover in self.root.iterdir():
            if leftover.name.startswith((_DELETING_PREFIX, _CREATING_PREFIX)):
                shutil.rmtree(leftover, ignore_errors=True)

    def _refuse_taken(self, name: str) -> None:
        for base in self.list():
            if _same(base.name, name):
                raise BaseTakenError(f"a knowledge base named {base.name!r} already exists")

    def _new_folder(self, name: str) -> Path:
        """A folder name that stays readable where the name allows it (ASCII), else a numbered one."""
        slug = _slug(name)
        candidate, n = slug, 1
        while (self.root / candidate).exists():
            n += 1
            candidate = f"{slug}-{n}"
        return self.root / candidate

    def _rewrite(self, base: BaseInfo, **changes: Any) -> None:
        assert base.folder is not None
        data = {"name": base.name, "created": base.created, "settings": base.settings, **changes}
        _write_json(base.folder / BASE_FILE, data)


def _slug(name: str) -> str:
    """The folder name a base called ``name`` gets (before numbering, when it is taken)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.casefold()).strip("-")
    return "base" if not slug or slug in _WINDOWS_DEVICES or slug == DEFAULT_BASE else slug


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
