"""One local LLM, many clients: questions take turns at the generator, a bounded number wait, and the rest are
told to come back later (429). A turn runs the blocking answer stream in the generator's own thread and hands its
events to the event loop; when the client goes away the stream is stopped at the next token, and the next question
gets the model only once the abandoned one has really stopped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2


class QueueFullError(Exception):
    """Every waiting place is taken; the client should retry after ``retry_after`` seconds."""

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(f"the model is busy and {waiting} questions are already waiting; retry in {retry_after} s")
        self.retry_after = retry_after


class Reservation:
    """A place in the queue, taken when a request is admitted (before a streamed response starts) and given back
    when the request gets the model or goes away without ever starting."""

    def __init__(self, queue: GenerationQueue) -> None:
        self._queue, self.active = queue, True

    def release(self) -> None:
        if self.active:
            self.active = False
            self._queue._waiting -= 1

    def __del__(self) -> None:  # a streamed response whose body never started still frees its place
        self.release()


@dataclass
class QueueStats:
    answering: bool
    waiting: int
    max_waiting: int
    served: int
    rejected: int
    stopped: int  # generations stopped because their client went away


class GenerationQueue:
    def __init__(self, max_waiting: int, retry_after: int) -> None:
        self.max_waiting, self.retry_after = max_waiting, retry_after
        self._slot: asyncio.Lock | None = None  # made inside the server's event loop
        self._waiting = 0
        self._served = self._rejected = self._stopped = 0
        # The LLM's own thread: generation never occupies the thread pool that retrieval and KB requests use.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docqa-generate")

    def _lock(self) -> asyncio.Lock:
        if self._slot is None:
            self._slot = asyncio.Lock()
        return self._slot

    def stats(self) -> QueueStats:
        return QueueStats(self._lock().locked(), self._waiting, self.max_waiting, self._served, self._rejected,
                          self._stopped)

    def reserve(self) -> Reservation:
        """A place in the queue, or QueueFullError when the model is busy and every waiting place is taken. Taken
        before a streamed response starts, so the client gets a real 429 status."""
        # Reservations count from admission, so a burst arriving in one instant cannot overfill the queue.
        if self._waiting + int(self._lock().locked()) >= self.max_waiting + 1:
            self._rejected += 1
            raise QueueFullError(self._waiting, self.retry_after)
        self._waiting += 1
        return Reservation(self)

    async def run(self, make_stream: Callable[[], Iterator[T]],
                  reservation: Reservation | None = None) -> AsyncIterator[T]:
        """Wait for the model (with ``reservation``, or QueueFullError at once), then yield the items of
        ``make_stream()`` as the generator thread produces them. Closing this iterator early (the client left) stops
        the stream."""
        slot = self._lock()
        reservation = reservation or self.reserve()
        try:
            await slot.acquire()
        finally:
            reservation.release()
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: int, value: object) -> None:
            loop.call_soon_threadsafe(items.put_nowait, (kind, value))

        def work() -> None:
            try:
                stream = make_stream()
                try:
                    for item in stream:
                        if stop.is_set():
                            break
                        put(_ITEM, item)
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
            except BaseException as exc:  # handed to the request, which turns it into an error response
                put(_ERROR, exc)
            else:
                put(_END, None)

        try:
            future = loop.run_in_executor(self._executor, work)
        except BaseException:
            slot.release()
            raise
        # The model is free again only when the thread has really finished, even if this request was cancelled.
        future.add_done_callback(lambda _: slot.release())
        finished = False
        try:
            while True:
                kind, value = await items.get()
                if kind == _END:
                    finished = True
                    return
                if kind == _ERROR:
                    finished = True
                    raise value  # type: ignore[misc]
                yield value  # type: ignore[misc]
        finally:
            if finished:
                self._served += 1
            else:
                self._stopped += 1
                stop.set()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
