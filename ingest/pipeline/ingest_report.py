"""What an ingest run did, as a plain record, a human summary and JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from ingest.visible_text import visible


@dataclass
class FileFailure:
    path: str
    reason: str

    def __str__(self) -> str:
        # A newline in a name would split the line in two; an escape sequence would reach the terminal.
        return f"{visible(self.path)}: {visible(self.reason)}"


@dataclass
class IngestReport:
    kb_dir: str
    generation: str = ""  # the live generation after the run ("" when nothing was ever committed)
    committed: bool = False  # False when nothing changed (no new generation) or on a dry run
    dry_run: bool = False
    files_added: int = 0
    files_updated: int = 0
    files_removed: int = 0
    files_skipped: int = 0
    files_duplicate: int = 0  # new paths whose content was already stored (not embedded again)
    failures: list[FileFailure] = field(default_factory=list)
    # Files found under a scanned folder but deleted from the base earlier (ingest/pipeline/excluded_sources.py):
    # left out; name one to add it back.
    files_excluded: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_total: int = 0
    documents_total: int = 0
    passages_embedded: int = 0  # computed by the embedder in this run
    passages_cached: int = 0  # taken from the embedding cache (finished by an earlier, interrupted run)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def files_failed(self) -> int:
        return len(self.failures)

    @property
    def chunks_per_second(self) -> float:
        """New chunks stored per second of the whole run."""
        return self.chunks_added / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["files_failed"] = self.files_failed
        data["chunks_per_second"] = round(self.chunks_per_second, 2)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def summary(self) -> str:
        head = "Dry run (nothing written)" if self.dry_run else (
            f"Committed generation {self.generation}" if self.committed else "Nothing changed")
        return "\n".join([
            f"{head} in {self.kb_dir}",
            f"  files:  {self.files_added} added, {self.files_updated} updated, {self.files_removed} removed, "
            f"{self.files_skipped} unchanged, {self.files_duplicate} duplicates, {self.files_failed} failed"
            + (f", {len(self.files_excluded)} left out (deleted from the base earlier; name a file to add it "
               "back)" if self.files_excluded else ""),
            f"  chunks: {self.chunks_added} added, {self.chunks_removed} removed, {self.chunks_total} total "
            f"in {self.documents_total} documents",
            f"  time:   {self.seconds:.1f} s ({self.chunks_per_second:.1f} chunks/s; "
            f"embedding {self.embed_seconds:.1f} s, {self.passages_embedded} passages embedded, "
            f"{self.passages_cached} from cache)",
        ])
