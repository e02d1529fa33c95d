"""Backend-independent generation logic: no-repeat n-grams, packaged-model assembly errors, the loader."""

from __future__ import annotations

import hashlib
import sys
import types

import numpy as np
import pytest

from app.config import GenerationSettings
from app.generation.base import GenerationError
from app.generation.factory import load_generator
from app.generation.no_repeat_ngram import NoRepeatNGramProcessor, banned_next_tokens
from app.generation.packaged_model import (
    PackagedModelError,
    PackagedModelSpec,
    packaged_model_path,
)


def test_banned_tokens_complete_an_existing_ngram():
    assert banned_next_tokens([5, 6, 7, 5], 2) == {6}
    assert banned_next_tokens([1, 2, 3, 1, 2], 3) == {3}
    assert banned_next_tokens([1, 2, 3], 3) == set()
    assert banned_next_tokens([4, 4, 9], 1) == {4, 9}
    assert banned_next_tokens([1, 2], 0) == set()


def test_processor_ignores_prompt_ngrams_and_blocks_generated_repeats():
    proc = NoRepeatNGramProcessor(2)
    scores = np.zeros(10, dtype=np.float32)
    prompt = np.array([1, 2, 1], dtype=np.intc)
    # The prompt contains the bigram (1, 2), but quoting the prompt is allowed.
    assert np.isfinite(proc(prompt, scores)).all()
    generated = np.array([1, 2, 1, 7, 8, 7], dtype=np.intc)
    out = proc(generated, scores)
    assert out[8] == -np.inf and np.isfinite(np.delete(out, 8)).all()
    assert np.isfinite(scores).all()  # the caller's array is not modified


def _fake_parts(monkeypatch, tmp_path, payloads: list[bytes]) -> PackagedModelSpec:
    names = []
    for i, payload in enumerate(payloads):
        part = tmp_path / f"part{i}.bin"
        part.write_bytes(payload)
        name = f"_docqa_fake_part_{i}"
        module = types.ModuleType(name)
        module.get_part_path = (lambda p=part: str(p))
        monkeypatch.setitem(sys.modules, name, module)
        names.append(name)
    digest = hashlib.sha256(b"".join(payloads)).hexdigest()
    return PackagedModelSpec("model.gguf", tuple(names), sum(map(len, payloads)), digest[:8], digest[-5:])


def test_parts_are_joined_in_order_once_and_checked(monkeypatch, tmp_path):
    spec = _fake_parts(monkeypatch, tmp_path, [b"abc", b"def", b"g"])
    path = packaged_model_path(tmp_path / "models", spec)
    assert path.read_bytes() == b"abcdefg"
    mtime = path.stat().st_mtime_ns
    assert packaged_model_path(tmp_path / "models", spec).stat().st_mtime_ns == mtime


def test_corrupt_part_gives_a_clear_error_and_leaves_nothing_behind(monkeypatch, tmp_path):
    spec = _fake_parts(monkeypatch, tmp_path, [b"abc", b"def"])
    (tmp_path / "part1.bin").write_bytes(b"deX")
    with pytest.raises(PackagedModelError, match="sha256 .* corrupt"):
        packaged_model_path(tmp_path / "models", spec)
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_part_package_is_named(monkeypatch, tmp_path):
    spec = PackagedModelSpec("m.gguf", ("_docqa_no_such_part_module",), 1, "", "")
    with pytest.raises(PackagedModelError, match="_docqa_no_such_part_module.*not installed"):
        packaged_model_path(tmp_path, spec)


def test_missing_gguf_and_unknown_backend_are_clear_errors(tmp_path):
    with pytest.raises(GenerationError, match="nope.gguf: GGUF model file not found"):
        load_generator(GenerationSettings(model=str(tmp_path / "nope.gguf")), tmp_path)
