"""Which floating-point type the embedder computes in: ``EmbedderSettings.dtype`` "auto" picks the fastest type that
keeps the vectors (cosine >= 0.99 to float32) on the device at hand."""

from __future__ import annotations

import sys
from pathlib import Path

DTYPES = ("float32", "bfloat16", "float16")
# CPU flags of native bfloat16 matrix instructions; without them torch emulates bf16 and runs slower than float32.
_BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}
_CPUINFO = Path("/proc/cpuinfo")


def cpu_has_native_bf16(cpuinfo: Path = _CPUINFO) -> bool:
    """True when the CPU advertises bf16 instructions (Linux /proc/cpuinfo; elsewhere assume not)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(_BF16_CPU_FLAGS & set(line.split(":", 1)[-1].split()))
    return False


def resolve_dtype(requested: str, device: str) -> str:
    """``requested`` itself unless it is "auto": float16 on CUDA, bfloat16 on CPUs with native bf16, else float32."""
    if requested != "auto":
        return requested
    if device.startswith("cuda"):
        return "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"
