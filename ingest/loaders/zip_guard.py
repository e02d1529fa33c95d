"""Bound what a zip-based document (.docx, .xlsx, .pptx) may decompress to, before any library parses it.

The central directory states each member's decompressed size, and Python's ``zipfile`` (which python-docx,
openpyxl and python-pptx all read through) never returns more bytes than a member states: a lying header ends
in a "Bad CRC" or short read, not in more data. So the sum of the stated sizes bounds the decompressed bytes
read, and a zip bomb is refused here with one line instead of growing the process by gigabytes.
"""

from __future__ import annotations

import io
import zipfile

from ingest.loaders.load_error import LoadError
from ingest.settings import LimitSettings

_MB = 1024 * 1024
# An OOXML file saved with a password is not a zip but an OLE compound file holding the encrypted package.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def check_zip_document(data: bytes, path: str, kind: str, limits: LimitSettings) -> None:
    """Raise ``LoadError`` unless ``data`` is a zip whose members decompress within the limits."""
    if data.startswith(OLE_MAGIC):
        raise LoadError(path, f"password-protected (encrypted) {kind} file, or an old binary Office file "
                              f"renamed to {kind}; save it without a password as {kind}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise LoadError(path, f"not a valid {kind} file (not a zip archive: {exc})") from exc
    if len(members) > limits.max_zip_entries:
        raise LoadError(path, f"{kind} holds {len(members)} parts, over the limit of {limits.max_zip_entries} "
                              "(limits.max_zip_entries)")
    total = sum(m.file_size for m in members)
    if total > limits.max_unzipped_mb * _MB:
        raise LoadError(path, f"{kind} decompresses to {total / _MB:.0f} MB, over the limit of "
                              f"{limits.max_unzipped_mb:g} MB (limits.max_unzipped_mb; a zip bomb?)")
