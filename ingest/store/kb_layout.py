"""Where things live inside a knowledge-base folder; shared by the reader and the writer.

kb_dir/CURRENT                  name of the live generation (replaced atomically with os.replace)
kb_dir/CURRENT.tmp-<pid>        the next CURRENT, written before a new generation folder is renamed into place: while
                                it exists, a generation newer than CURRENT is a commit in progress (or one a crash
                                cut off before CURRENT was flipped), not a sign that CURRENT was set back
kb_dir/generations/<name>/      index.faiss, catalog.sqlite3, bm25/, manifest.json
kb_dir/generations/.incomplete-<name>/   a generation being written; removed by the next writer if left behind
kb_dir/.lock                    held (filelock) by the one writer; .lock.owner names its pid
kb_dir/embedding_cache.sqlite3  passage vectors keyed by text hash, survives interrupted runs
kb_dir/token_vectors.sqlite3    passages' compressed token vectors for the MaxSim reranker, keyed the same way
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

CURRENT_FILE = "CURRENT"
GENERATIONS_DIR = "generations"
LOCK_FILE = ".lock"
EMBEDDING_CACHE_FILE = "embedding_cache.sqlite3"
TOKEN_VECTORS_FILE = "token_vectors.sqlite3"
INCOMPLETE_PREFIX = ".incomplete-"
PENDING_CURRENT_PREFIX = f"{CURRENT_FILE}.tmp-"
INDEX_FILE = "index.faiss"
CATALOG_FILE = "catalog.sqlite3"
KEYWORD_DIR = "bm25"
MANIFEST_FILE = "manifest.json"
# Source files deleted from the base on request, which a later scan of their folder must not bring back.
EXCLUDED_SOURCES_FILE = "excluded_sources.json"

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


def pointer_kind_problem(kb_dir: Path) -> str:
    """Why CURRENT is not a plain file ("" when it is one or is absent): a folder or a symbolic link in its place
    (a sync tool, a restore, a hand edit) is named, with the fix."""
    path = Path(kb_dir) / CURRENT_FILE
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})"
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"{path} is a symbolic link (to {target}), not the pointer file docqa writes"
    if stat.S_ISDIR(info.st_mode):
        return f"{path} is a folder, not the pointer file docqa writes"
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    return ""


def read_pointer(kb_dir: Path) -> tuple[str | None, str]:
    """(generation name CURRENT holds, "") or (None, what is wrong with it); never raises.

    The problem is "" when CURRENT is simply absent; otherwise it says why the pointer cannot be used (a folder or
    link in its place, unreadable, garbage, or naming a generation folder that is not there)."""
    path = Path(kb_dir) / CURRENT_FILE
    if problem := pointer_kind_problem(kb_dir):
        return None, problem
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


def announce_commit(kb_dir: Path, name: str) -> Path:
    """Write the next CURRENT (naming ``name``) beside the live one, durably, before the new generation folder is
    renamed into place; ``write_current(kb_dir, name, announced)`` then flips it in. A crash in between leaves this
    file naming the generation, which tells the next writer (and readers) that the newer folder never became live."""
    tmp = kb_dir / f"{PENDING_CURRENT_PREFIX}{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(kb_dir)
    return tmp


def pending_commits(kb_dir: Path) -> set[str]:
    """Generations named by announced, not yet flipped CURRENT files (a commit in progress or cut off)."""
    names = set()
    for tmp in Path(kb_dir).glob(f"{PENDING_CURRENT_PREFIX}*"):
        try:
            name = tmp.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if generation_number(name) is not None:
            names.add(name)
    return names


def newer_generations(kb_dir: Path, name: str) -> list[str]:
    """Committed generations numbered above ``name``, newest first."""
    number = generation_number(name)
    if number is None:
        return []
    return [g for g in committed_generations(kb_dir) if (generation_number(g) or 0) > number]


def write_current(kb_dir: Path, name: str, announced: Path | None = None) -> None:
    """Point CURRENT at ``name`` atomically (readers see the old name or the new one, never a partial file), from
    the file ``announce_commit`` wrote, or from a new one."""
    tmp = announced or announce_commit(kb_dir, name)
    os.replace(tmp, kb_dir / CURRENT_FILE)
    fsync_dir(kb_dir)
