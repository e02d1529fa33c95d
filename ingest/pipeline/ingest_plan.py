"""Deciding what an incremental ingest has to do: compare the files found on disk with the catalog.

mtime and size are the fast check; a file whose mtime or size moved is hashed, and only a new hash means new
content (a ``touch`` or a copy back and forth only refreshes the stored mtime).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from ingest.pipeline.source_scan import ScanResult, SourceFile, file_sha256, under_roots
from ingest.records import DocumentRecord


@dataclass
class IngestPlan:
    unchanged: list[SourceFile] = field(default_factory=list)
    touched: list[tuple[SourceFile, DocumentRecord]] = field(default_factory=list)  # same bytes, new mtime/size
    new: list[tuple[SourceFile, str | None]] = field(default_factory=list)  # (file, content hash or None)
    changed: list[tuple[SourceFile, str | None]] = field(default_factory=list)
    # Catalog paths gone from a root that is present; never those under a missing root, an unlistable folder or a
    # link that is not followed (an unplugged drive, an unmounted share, a permission change, a link left out must
    # not remove documents).
    removed: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.touched or self.new or self.changed or self.removed)


def plan_ingest(scan: ScanResult, known: Mapping[str, DocumentRecord],
                hasher: Callable[[str], str | None] = file_sha256) -> IngestPlan:
    """What to do with each file of ``scan`` given the catalog's documents ``known`` (by path)."""
    plan = IngestPlan()
    found = set()
    for source in scan.files:
        found.add(source.path)
        previous = known.get(source.path)
        if previous is None:
            plan.new.append((source, hasher(source.path)))
            continue
        if source.mtime == previous.mtime and source.size == previous.size:
            plan.unchanged.append(source)
            continue
        digest = hasher(source.path)
        if digest == previous.content_hash:
            plan.touched.append((source, previous))
        else:
            plan.changed.append((source, digest))
    present = [root for root in scan.roots if root not in scan.missing_roots]
    blind = [*scan.unreadable, *scan.outside]
    plan.removed = sorted(path for path in known if path not in found and under_roots(path, present)
                          and not under_roots(path, blind))
    return plan
