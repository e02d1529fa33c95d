"""Receiving a multipart upload straight to disk: each file part is written, as it arrives, to a staged file in
the upload folder (``app.uploads.saving.staging_path``), and a part over the per-file limit stops being written the moment
it passes it. Memory holds one network chunk at a time, whatever the size of the upload (Starlette's own form
parser would spool every file to the temporary folder first, and the handler then read it whole).

python-multipart parses; its callbacks only queue what to do with the bytes, and the queue is carried out in a
worker thread after each chunk, so disk writes never block the event loop."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from app.config import LimitSettings
from app.uploads.saving import StagedUpload, UploadFailure, max_upload_bytes, over_limit_reason, staging_path

# A form field that is not a file (clients send none; a stray one is read and dropped) may hold this much.
_MAX_FIELD_BYTES = 64 * 1024


class UploadRefused(Exception):
    """The whole request is refused (malformed, too many files, a file name that is not a plain name); nothing it
    carried is kept."""


@dataclass
class ReceivedUploads:
    staged: list[StagedUpload] = field(default_factory=list)
    failures: list[UploadFailure] = field(default_factory=list)  # files refused on their own (over the limit)


@dataclass
class _Part:
    name: str = ""  # the file name as the client sent it ("" for a plain field)
    disposition: bytes = b""
    path: Path | None = None
    out: BinaryIO | None = None
    size: int = 0
    over: bool = False


class _Receiver:
    def __init__(self, upload_dir: Path, limits: LimitSettings, max_files: int,
                 refuse_name: Callable[[str], str | None]) -> None:
        self.upload_dir, self.limits, self.max_files, self.refuse_name = upload_dir, limits, max_files, refuse_name
        self.limit = max_upload_bytes(limits)
        self.result = ReceivedUploads()
        self.parts: list[_Part] = []
        self.part = _Part()
        self.header_name = self.header_value = b""
        self.todo: list[tuple[str, _Part, bytes]] = []  # ("open" | "write" | "close" | "drop", part, data)

    # --- python-multipart callbacks: decide, and queue the disk work -------------------------------------------

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.strip().lower() == b"content-disposition":
            self.part.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.disposition)
        if b"filename" not in options:
            return  # a plain field: its bytes are counted and dropped
        self.part.name = options[b"filename"].decode("utf-8", "replace")
        if len(self.parts) >= self.max_files:
            raise UploadRefused(f"more than {self.max_files} files in one upload (server.max_upload_files)")
        if (problem := self.refuse_name(self.part.name)) is not None:
            raise UploadRefused(problem)
        self.part.path = staging_path(self.upload_dir)
        self.parts.append(self.part)
        self.todo.append(("open", self.part, b""))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        part.size += end - start
        if part.path is None:
            if part.size > _MAX_FIELD_BYTES:
                raise UploadRefused(f"a form field is over {_MAX_FIELD_BYTES // 1024} KB")
            return
        if part.over:
            return
        if part.size > self.limit:
            part.over = True
            self.todo.append(("drop", part, b""))
            self.result.failures.append(UploadFailure(part.name, over_limit_reason(self.limits)))
            return
        self.todo.append(("write", part, data[start:end]))

    def on_part_end(self) -> None:
        if self.part.path is not None and not self.part.over:
            self.todo.append(("close", self.part, b""))

    # --- the disk work, in a worker thread -----------------------------------------------------------------------

    def carry_out(self) -> None:
        todo, self.todo = self.todo, []
        for action, part, data in todo:
            if action == "open":
                part.out = open(part.path, "wb")
            elif action == "write":
                part.out.write(data)
            elif action == "close":
                part.out.flush()
                os.fsync(part.out.fileno())  # complete on disk before it is renamed under its name
                part.out.close()
                part.out = None
                if part.size == 0:
                    self.result.failures.append(UploadFailure(part.name, "the file is empty"))
                    part.path.unlink(missing_ok=True)
                else:
                    self.result.staged.append(StagedUpload(part.name, part.path, part.size))
            else:  # drop: over the limit, nothing of it is kept
                part.out.close()
                part.out = None
                part.path.unlink(missing_ok=True)

    def discard_everything(self) -> None:
        for part in self.parts:
            if part.out is not None:
                part.out.close()
            if part.path is not None:
                part.path.unlink(missing_ok=True)


async def receive_uploads(content_type: str, stream: AsyncIterator[bytes], upload_dir: Path, limits: LimitSettings,
                          max_files: int, refuse_name: Callable[[str], str | None]) -> ReceivedUploads:
    """Stage every file of a ``multipart/form-data`` body (``refuse_name(name)`` returns why a file name refuses
    the whole request, or None). Raises UploadRefused; every staged file is then deleted."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadRefused("the multipart body has no boundary")
    receiver = _Receiver(upload_dir, limits, max_files, refuse_name)
    upload_dir.mkdir(parents=True, exist_ok=True)
    callbacks = {name: getattr(receiver, name) for name in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end", "on_headers_finished",
        "on_part_data", "on_part_end")}
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in stream:
            parser.write(chunk)
            if receiver.todo:
                await run_in_threadpool(receiver.carry_out)
        parser.finalize()
        await run_in_threadpool(receiver.carry_out)
        if any(part.out is not None for part in receiver.parts):
            raise UploadRefused("the multipart body ends in the middle of a file")
    except FormParserError as exc:
        receiver.discard_everything()
        raise UploadRefused(f"the multipart body is malformed ({exc})") from None
    except BaseException:  # refused, the client went away, or the server stops: nothing half-received stays
        receiver.discard_everything()
        raise
    return receiver.result
