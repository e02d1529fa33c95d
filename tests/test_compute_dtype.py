from pathlib import Path

import pytest

import ingest.embedding.compute_dtype as compute_dtype
from ingest.embedding.compute_dtype import cpu_has_native_bf16, resolve_dtype

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\nbugs\t\t: spectre_v1\n"


@pytest.mark.parametrize(("extra", "native"), [("avx512_bf16", True), ("amx_bf16 amx_tile", True),
                                               ("avx512vl", False), ("", False)])
def test_native_bf16_is_read_from_cpu_flags(tmp_path: Path, extra: str, native: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(FLAGS.format(extra=extra))
    if not compute_dtype.sys.platform.startswith("linux"):
        pytest.skip("reads /proc/cpuinfo-style files only on Linux")
    assert cpu_has_native_bf16(cpuinfo) is native


def test_unreadable_cpuinfo_means_no_bf16(tmp_path: Path) -> None:
    assert cpu_has_native_bf16(tmp_path / "missing") is False


def test_auto_picks_by_device_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_dtype("float32", "cuda") == "float32"  # an explicit choice always wins
    assert resolve_dtype("auto", "cuda:1") == "float16"
    monkeypatch.setattr(compute_dtype, "cpu_has_native_bf16", lambda: True)
    assert resolve_dtype("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(compute_dtype, "cpu_has_native_bf16", lambda: False)
    assert resolve_dtype("auto", "cpu") == "float32"
