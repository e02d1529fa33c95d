"""manifest.json of a knowledge-base generation: which embedder made the vectors, and how many there are."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ingest.store.store_files import permission_message

# Bumped when the on-disk layout changes in a way old readers cannot handle.
FORMAT_VERSION = 1


class ManifestError(ValueError):
    """manifest.json is missing, not JSON, or lacks a field."""


@dataclass
class Manifest:
    embedder: str
    dimension: int
    index_type: str
    n_documents: int
    n_chunks: int
    created_at: float
    updated_at: float
    generation: str
    format_version: int = FORMAT_VERSION
    # Checksum of each file of the generation (relative path -> "crc32:<hex>:<size>"), verified when opened.
    # Absent in generations written before checksums were recorded: those files are only checked by their loaders.
    checksums: dict[str, str] = field(default_factory=dict)


_TYPES = {"embedder": str, "dimension": int, "index_type": str, "n_documents": int, "n_chunks": int,
          "created_at": (int, float), "updated_at": (int, float), "generation": str, "format_version": int}


def write_manifest(manifest: Manifest, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(dataclasses.asdict(manifest), fh, ensure_ascii=False, indent=2)
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: missing") from exc
    except PermissionError as exc:
        raise ManifestError(permission_message(path, "read")) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a JSON object")
    for name, kind in _TYPES.items():
        value = raw.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ManifestError(f"{path}: field {name!r} is missing or has the wrong type ({value!r})")
    if raw["format_version"] > FORMAT_VERSION:
        raise ManifestError(f"{path}: format version {raw['format_version']} is newer than this program "
                            f"understands ({FORMAT_VERSION})")
    checksums = raw.get("checksums", {})
    if not isinstance(checksums, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in checksums.items()):
        raise ManifestError(f"{path}: field 'checksums' has the wrong type")
    return Manifest(**{name: raw[name] for name in _TYPES}, checksums=checksums)
