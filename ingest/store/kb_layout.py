"""Where things live inside a knowledge-base folder; shared by the reader and the writer.

kb_dir/CURRENT                  name of the live generation (replaced atomically with os.replace)
kb_dir/generations/<name>/      index.faiss, catalog.sqlite3, bm25/, manifest.json
kb_dir/generations/.incomplete-<name>/   a generation being written; removed by the next writer if left behind
kb_dir/.lock                    held (filelock) by the one writer; .lock.owner names its pid
kb_dir/embedding_cache.sqlite3  passage vectors keyed by text hash, survives interrupted runs
kb_dir/token_vectors.sqlite3    passages' compressed token vectors for the MaxSim reranker, keyed the same way
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

CURRENT_FILE = "CURRENT"
GENERATIONS_DIR = "generations"
LOCK_FILE = ".lock"
EMBEDDING_CACHE_FILE = "embedding_cache.sqlite3"
TOKEN_VECTORS_FILE = "token_vectors.sqlite3"
INCOMPLETE_PREFIX = ".incomplete-"
INDEX_FILE = "index.faiss"
CATALOG_FILE = "catalog.sqlite3"
KEYWORD_DIR = "bm25"
MANIFEST_FILE = "manifest.json"

_GENERATION_RE = re.compile(r"^gen-(\d{6,})$")


@dataclass(frozen=True)
class GenerationPaths:
    """The files of one generation folder."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def index(self) -> Path:
        return self.root / INDEX_FILE

    @property
    def catalog(self) -> Path:
        return self.root / CATALOG_FILE

    @property
    def keyword_dir(self) -> Path:
        return self.root / KEYWORD_DIR

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_FILE


def generation_name(number: int) -> str:
    return f"gen-{number:06d}"


def generation_number(name: str) -> int | None:
    """The sequence number of a committed generation folder name, None for anything else."""
    match = _GENERATION_RE.match(name)
    return int(match.group(1)) if match else None


def generations_dir(kb_dir: Path) -> Path:
    return kb_dir / GENERATIONS_DIR


def generation_paths(kb_dir: Path, name: str) -> GenerationPaths:
    return GenerationPaths(generations_dir(kb_dir) / name)


def read_pointer(kb_dir: Path) -> tuple[str | None, str]:
    """(generation name CURRENT holds, "") or (None, what is wrong with it); never raises.

    The problem is "" when CURRENT is simply absent; otherwise it says why the pointer cannot be used (unreadable,
    garbage, or naming a generation folder that is not there)."""
    path = Path(kb_dir) / CURRENT_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"{path} cannot be read ({exc.strerror or exc})"
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, f"{path} holds garbage, not a generation name"
    if generation_number(name) is None:
        return None, f"{path} holds {name[:40]!r}, not a generation name" if name else f"{path} is empty"
    if not generation_paths(Path(kb_dir), name).root.is_dir():
        return None, f"{path} names generation {name!r}, which does not exist"
    return name, ""


def read_current(kb_dir: Path) -> str | None:
    """Name of the live generation when CURRENT validly names an existing one, else None (see ``read_pointer``
    for why; ``knowledge_base.resolve_live`` recovers from a damaged pointer)."""
    return read_pointer(kb_dir)[0]


def committed_generations(kb_dir: Path) -> list[str]:
    """Names of the committed generation folders, newest first."""
    gens = generations_dir(Path(kb_dir))
    try:
        entries = list(gens.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(n, e.name) for e in entries if (n := generation_number(e.name)) is not None and e.is_dir()]
    return [name for _, name in sorted(found, reverse=True)]


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a crash after it returns cannot undo the rename)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_current(kb_dir: Path, name: str) -> None:
    """Point CURRENT at ``name`` atomically: readers see the old name or the new one, never a partial file."""
    tmp = kb_dir / f"{CURRENT_FILE}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, kb_dir / CURRENT_FILE)
    fsync_dir(kb_dir)
