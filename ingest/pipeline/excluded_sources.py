"""The source files a user deleted from a knowledge base, so that the next ingest of their folder does not bring
them back.

The rule (README, "Deleting and re-indexing documents"): deleting a document remembers its path here; an ingest
that finds the file again under a folder it scans skips it and says so; naming the file itself (``python -m ingest
path/to/file.pdf``, an upload under that name) adds it back and forgets the exclusion. The list lives beside the
writer lock in the base's folder and is only written under that lock, after the generation it belongs to was
committed, so a crash in between leaves a deleted document that the next folder scan brings back (never one
excluded but still in the base)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ingest.store.kb_layout import EXCLUDED_SOURCES_FILE, fsync_dir

log = logging.getLogger(__name__)


class ExcludedSources:
    """The excluded paths of the base whose folder is ``kb_dir`` (catalog paths, as the scan writes them)."""

    def __init__(self, kb_dir: Path) -> None:
        self.path = Path(kb_dir) / EXCLUDED_SOURCES_FILE
        self.paths = self._read()

    def _read(self) -> set[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            # Losing the list only means deleted files under a scanned folder may come back: said, not fatal.
            log.warning("%s cannot be read (%s): documents deleted earlier may be ingested again from their folders",
                        self.path, exc)
            return set()
        paths = data.get("paths") if isinstance(data, dict) else None
        return {p for p in paths if isinstance(p, str)} if isinstance(paths, list) else set()

    def __contains__(self, path: str) -> bool:
        return path in self.paths

    def update(self, add: Iterable[str] = (), forget: Iterable[str] = ()) -> None:
        """Remember ``add``, forget ``forget``, and write the list (atomically) when it changed."""
        paths = (self.paths | set(add)) - set(forget)
        if paths == self.paths:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"paths": sorted(paths)}, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self.paths = paths
