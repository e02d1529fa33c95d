"""Turn the bytes of a text file into ``str``: detect the encoding, reject binary content.

Order of attempts, most reliable first:
1. a byte-order mark (UTF-8-SIG, UTF-16, UTF-32) is decisive; then an encoding the file declares (HTML);
2. UTF-8: valid UTF-8 is almost never an accident for non-ASCII text; a file with one or a very few invalid
   bytes (a truncated last character) is still UTF-8, read without them;
3. strict GB18030 (a superset of GBK/GB2312) if the result looks like Chinese: most Chinese characters decoded
   should lie in GB2312. Statistical detectors misread short GBK files (a few dozen characters) as Big5,
   Shift-JIS or cp1252, so this Chinese-first project tries GB18030 before asking one;
4. charset-normalizer's best guess (ties broken towards common legacy encodings), decoded strictly.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import CharsetMatch, from_bytes

from ingest.loaders.load_error import LoadError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# Signatures of binary formats people rename to .txt by mistake, named so the error says what it is.
_MAGIC = (
    (b"%PDF-", "a PDF document"), (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"), (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx)"), (b"\x7fELF", "an executable"),
    (b"\xd0\xcf\x11\xe0", "an old Office (OLE) document"), (b"\x1f\x8b", "a gzip archive"),
)
# A few NUL bytes (bad copy/paste, editors) are cleaned; more than this fraction means binary data.
MAX_NUL_FRACTION = 0.01
# Decoded text whose share of control characters exceeds this is binary data that happened to decode.
MAX_CONTROL_FRACTION = 0.05
# How much decoded Chinese text is checked for GB2312 plausibility, and how much charset-normalizer reads.
PLAUSIBILITY_SAMPLE_CHARS = 100_000
DETECTOR_SAMPLE_BYTES = 1_000_000
MIN_GB2312_SHARE = 0.9
# UTF-8 text with at most this fraction of invalid bytes (or one) is read as UTF-8 without them.
MAX_BAD_UTF8_FRACTION = 0.001
# Detector matches within this "chaos" of the best count as ties, broken by COMMON_LEGACY_ENCODINGS order.
CHAOS_TOLERANCE = 0.1
COMMON_LEGACY_ENCODINGS = ("cp1252", "big5", "cp932", "euc_kr", "cp1251", "cp1250")

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_HAN = re.compile("[\u4e00-\u9fff]")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def _looks_like_chinese(text: str) -> bool:
    sample = text[:PLAUSIBILITY_SAMPLE_CHARS]
    han = _HAN.findall(sample)
    if not han:
        return False
    # GB18030 maps byte pairs outside GBK to private-use code points: Big5 or Shift-JIS bytes produce them.
    if len(_PRIVATE_USE.findall(sample)) > (1 - MIN_GB2312_SHARE) * len(han):
        return False
    common = 0
    for ch in han:
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    return common / len(han) >= MIN_GB2312_SHARE


def _best_guess(sample: bytes) -> CharsetMatch | None:
    """charset-normalizer's best match, except that a common legacy encoding scoring nearly as well wins: on
    short texts the detector's ranking is noise (it reads French cp1252 as Baltic cp1257)."""
    matches = list(from_bytes(sample))
    if not matches:
        return None
    floor = min(m.chaos for m in matches) + CHAOS_TOLERANCE
    close = {m.encoding: m for m in matches if m.chaos <= floor}
    return next((close[name] for name in COMMON_LEGACY_ENCODINGS if name in close), matches[0])


def _declared_decode(data: bytes, declared: str) -> tuple[str, str] | None:
    try:
        return data.decode(declared), declared
    except (UnicodeDecodeError, LookupError):
        return None  # a wrong or unknown declaration: fall back to detection


def _decode(data: bytes, path: str, declared: str | None) -> tuple[str, str]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise LoadError(path, f"undecodable text: has a {encoding} byte-order mark but {exc.reason} "
                                      f"at byte {exc.start}") from exc
    for name, label in _MAGIC:
        if data.startswith(name):
            raise LoadError(path, f"binary file ({label}), not text")
    nuls = data.count(b"\x00")
    if nuls > MAX_NUL_FRACTION * len(data):
        raise LoadError(path, f"binary content ({nuls} NUL bytes), not text")
    if nuls:
        data = data.replace(b"\x00", b"")
    if declared and (decoded := _declared_decode(data, declared)):
        return decoded
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode("utf-8"))
    if bad <= max(1.0, MAX_BAD_UTF8_FRACTION * len(data)):
        # UTF-8 with a few damaged bytes (a cut-off last character, a bad copy) loses those bytes, not the file.
        return text.replace("\ufffd", "") if bad else text, "utf-8 (damaged bytes dropped)"
    try:
        text = data.decode("gb18030")
        if _looks_like_chinese(text):
            return text, "gb18030"
    except UnicodeDecodeError:
        pass
    try:
        best = _best_guess(data[:DETECTOR_SAMPLE_BYTES])
    except Exception as exc:  # the detector is a library: its failure is still this file's decoding failure
        raise LoadError(path, f"undecodable text: encoding detection failed ({type(exc).__name__})") from exc
    if best is None:
        raise LoadError(path, "undecodable text: not UTF-8 or GB18030, and no other encoding fits")
    try:
        return data.decode(best.encoding), best.encoding
    except (UnicodeDecodeError, LookupError) as exc:
        raise LoadError(path, f"undecodable text: not UTF-8 or GB18030, best guess {best.encoding} fails") from exc


def decode_text(data: bytes, path: str, declared: str | None = None) -> tuple[str, str]:
    """Return ``(text, encoding)`` for the bytes of the file ``path`` (used only in error messages).

    ``declared`` is an encoding the file names itself (an HTML ``<meta charset>``); it is tried right after a
    byte-order mark and ignored when the bytes do not decode with it.
    """
    text, encoding = _decode(data, path, declared)
    controls = len(_CONTROL.findall(text))
    if text and controls > MAX_CONTROL_FRACTION * len(text):
        raise LoadError(path, f"binary content ({controls} control characters after decoding as {encoding})")
    return text, encoding
