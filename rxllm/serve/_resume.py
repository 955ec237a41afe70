"""Resumable streams: a call that outlives its connection for a while, and ids to rejoin it.

With resumption on, a streamed call runs in a task of its own (``Stream``), not in the
response: its events are numbered from 0 (the ``id:`` of each) and kept in a buffer, and
any number of responses read them from where they ask. When the last reader leaves
before the end, the call keeps running for the resume window; a reader that comes back
within it (``Last-Event-ID: n``) gets every event after ``n``, so nothing is repeated
or lost, and if none comes the call is cancelled. A finished stream is kept for the
window too, for a client that left just before the end.

The buffer holds the last ``max_events`` events of each stream. While a client reads,
it holds the call back as a stream that is not resumable does: no event it has yet to
read is dropped, and the model waits for it. With no reader, the call runs on at the
model's pace and the oldest events are dropped past the bound: a reconnect that asks
for a dropped event is answered 410 (Gone), to start the request again, never with a
gap. The streams kept are those running (at most the app's ``max_concurrency``, as each
holds a call's slot until it ends) and those that ended within the window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence

from ._encoder import Encoder
from ._errors import ClientError
from ._sse import Outgoing, frame, frames

__all__ = ["DEFAULT_MAX_EVENTS", "ResumeStore", "Stream", "parse_last_event_id"]

_ORIGIN = object()

_GONE = "the events after that id are no longer kept; start the request again"

#: Events kept per stream (about a token each: some hundreds of kilobytes of SSE).
DEFAULT_MAX_EVENTS = 10_000


class Stream:
    """One resumable call: its numbered events and the task that makes them."""

    def __init__(self, key: str, format: str, encoder: Encoder, max_events: int) -> None:
        self.key = key
        self.format = format
        self.encoder = encoder
        #: (id, framed bytes), the last ``max_events`` events.
        self.events: deque[tuple[int, bytes]] = deque(maxlen=max_events)
        self.max_events = max_events
        #: Where each reader reads next, by a token of its own; the request that started
        #: the stream holds its place from the first event until its response reads.
        self.positions: dict[object, int] = {_ORIGIN: 0}
        self.next_id = 0
        self.done = False
        self.readers = 0
        #: Resolves when the first events are in, or with the error that came before.
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self._changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._expiry: asyncio.TimerHandle | None = None

    @property
    def first_kept(self) -> int:
        """The id of the oldest event still kept."""
        return self.events[0][0] if self.events else self.next_id

    def _add(self, events: Sequence[Outgoing]) -> None:
        for event in events:
            self.events.append((self.next_id, frame(event, str(self.next_id))))
            self.next_id += 1
        self._wake()

    def _wake(self) -> None:
        if not self._changed.done():
            self._changed.set_result(None)
        self._changed = asyncio.get_running_loop().create_future()

    def _needed(self, count: int) -> bool:
        """Whether adding ``count`` events would drop one a reader has yet to read."""
        if not self.positions:
            return False
        oldest_after = min(self.next_id, self.next_id + count - self.max_events)
        return min(self.positions.values()) < oldest_after

    async def produce(self, events: AsyncGenerator[Sequence[Outgoing], None]) -> None:
        """Run the call: every batch of events into the buffer."""
        try:
            async with contextlib.aclosing(events):
                async for batch in events:
                    # A batch (what one network read brought) may be larger than the
                    # buffer: it goes in by parts a reader can keep up with.
                    for start in range(0, len(batch), self.max_events):
                        part = batch[start : start + self.max_events]
                        while self._needed(len(part)):  # a slow reader holds the call back
                            await asyncio.shield(self._changed)
                        self._add(part)
                    if not self.started.done():
                        self.started.set_result(None)
        except Exception as exc:  # before the first event (later ones are in-band)
            if not self.started.done():
                self.started.set_exception(exc)
        finally:
            self.done = True
            if not self.started.done():
                self.started.cancel()
            self._wake()

    async def read(self, after: int | None) -> AsyncIterator[bytes]:
        """The stream's bytes from the event after ``after`` (from the start if ``None``)."""
        position = 0 if after is None else after + 1
        token = object()
        self.positions.pop(_ORIGIN, None)
        self.positions[token] = position
        self.readers += 1
        try:
            while True:
                if position < self.first_kept:  # dropped before this reader came
                    gone = ClientError(410, "invalid_request_error", _GONE)
                    yield frames(self.encoder.fail(gone))
                    return
                start = position - self.first_kept
                if start < len(self.events):
                    pieces = [self.events[i][1] for i in range(start, len(self.events))]
                    position = self.positions[token] = self.next_id
                    self._wake()
                    yield b"".join(pieces)
                elif self.done:
                    return
                else:
                    self.positions[token] = position
                    await asyncio.shield(self._changed)
        finally:
            self.readers -= 1
            self.positions.pop(token, None)
            self._wake()


class ResumeStore:
    """The resumable streams of one app, by key.

    Args:
        window: seconds a stream is kept after its last reader leaves (running) or after
            it ends (finished).
        max_events: events kept per stream (see the module's docstring).
    """

    def __init__(self, window: float, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self.window = window
        self.max_events = max_events
        self.streams: dict[str, Stream] = {}

    def start(
        self,
        key: str,
        format: str,
        events: AsyncGenerator[Sequence[Outgoing], None],
        encoder: Encoder,
        on_end: Callable[[], None] = lambda: None,
    ) -> Stream:
        """Start a call's stream under ``key`` (replacing, and cancelling, one before)."""
        old = self.streams.pop(key, None)
        if old is not None and old.task is not None:
            old.task.cancel()
        stream = Stream(key, format, encoder, self.max_events)
        self.streams[key] = stream

        async def run() -> None:
            try:
                await stream.produce(events)
            finally:
                on_end()
                self._watch(stream)

        stream.task = asyncio.ensure_future(run())
        return stream

    def get(self, key: str) -> Stream | None:
        return self.streams.get(key)

    def forget(self, stream: Stream) -> None:
        """Drop a stream now (one that failed before its first event)."""
        if self.streams.get(stream.key) is stream:
            del self.streams[stream.key]

    def reader(self, stream: Stream, after: int | None) -> AsyncIterator[bytes]:
        """A response body reading ``stream``; when it closes, the window starts."""
        if stream._expiry is not None:
            stream._expiry.cancel()
            stream._expiry = None

        async def body() -> AsyncGenerator[bytes, None]:
            try:
                async for piece in stream.read(after):
                    yield piece
            finally:
                self._watch(stream)

        return body()

    def _watch(self, stream: Stream) -> None:
        """With no reader left, end the stream after the window unless one comes back."""
        if stream.readers or stream._expiry is not None:
            return
        stream._expiry = asyncio.get_running_loop().call_later(self.window, self._expire, stream)

    def _expire(self, stream: Stream) -> None:
        stream._expiry = None
        if stream.readers:
            return
        if self.streams.get(stream.key) is stream:
            del self.streams[stream.key]
        if stream.task is not None and not stream.done:
            stream.task.cancel()

    async def aclose(self) -> None:
        """Cancel every stream still running (the app is shutting down)."""
        tasks = [s.task for s in self.streams.values() if s.task is not None]
        for stream in self.streams.values():
            if stream._expiry is not None:
                stream._expiry.cancel()
        self.streams.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def parse_last_event_id(value: str | None) -> int | None:
    """The event id a reconnecting client last saw, from ``Last-Event-ID``.

    Raises:
        ValueError: for anything but a whole number of at least -1.
    """
    if value is None or value == "":
        return None
    number = int(value)
    if number < -1:
        raise ValueError(value)
    return number
