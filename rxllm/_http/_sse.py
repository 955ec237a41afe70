"""Incremental Server-Sent Events decoder, on bytes.

OpenAI, Anthropic, Gemini, llama.cpp and most other providers stream over SSE. This
module turns the raw bytes of such a response into ``ServerSentEvent`` records by
following the WHATWG HTML standard, section 9.2.6 "Interpreting an event stream",
to the letter, because the ad-hoc parsers that are common in client libraries get
the corners wrong:

* Lines end with CRLF, LF or CR, and a CR that ends one network read followed by an
  LF that starts the next is a single line ending, not an extra blank line (which
  would dispatch an event early).
* Lines are split on the bytes ``\\r`` and ``\\n`` only, before UTF-8 decoding, so
  U+2028, U+2029 and U+0085 inside JSON payloads are never taken for line breaks
  (``str.splitlines`` would), and a multi-byte character cut in two by a network
  read is reassembled for free.
* An event only exists once its terminating blank line has arrived; whatever is
  pending at the end of the stream is discarded.

The decoder is linear in the input: a read only scans its own bytes, and the pieces
of an incomplete line are joined once, when the line completes, so a 10 MiB event
arriving in 4 KiB reads costs no more than one arriving whole. Its memory is bounded
too: an event whose data, or a line still arriving, passes ``max_event_bytes`` fails
with ``EventTooLargeError`` as soon as the limit is passed, not once the event ends.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from pydantic_core import from_json as _from_json

from .._constants import MAX_EVENT_BYTES
from ..errors import EventTooLargeError, ProtocolError
from ._quote import MAX_QUOTE, decode_lines, start_of

__all__ = ["SSEDecoder", "ServerSentEvent"]

_BOM = b"\xef\xbb\xbf"

# ``ServerSentEvent.json`` parses with pydantic-core's ``from_json`` (jiter, in Rust):
# 1.4 µs for a typical OpenAI chunk where ``json.loads`` takes 3.4, and the JSON of every
# event is the largest per-token cost of a stream.


class ServerSentEvent(NamedTuple):
    """One dispatched event.

    A named tuple, so that the decoder builds one in a single C call (0.12 µs, where
    filling a frozen dataclass's slots one by one took 0.28): it is made once per token.

    Attributes:
        event: the event type; ``"message"`` when the server sent no ``event`` field.
        data: the ``data`` lines of the event, joined with ``"\\n"``.
        id: the last event ID of the stream when this event was dispatched: it
            persists across events until an ``id`` field changes it (an empty
            ``id`` field resets it to ``""``); ``None`` if no ``id`` was ever sent.
        retry: the reconnection time in milliseconds given by a ``retry`` field
            in this event's block, or ``None``.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """Decode ``data`` as JSON.

        Returns:
            The decoded value.

        Raises:
            ProtocolError: ``data`` is not valid JSON.
        """
        try:
            return _from_json(self.data)
        except ValueError:
            # jiter refuses some JSON that json accepts (nesting past 200 levels, lone
            # surrogates); json then decides, so the result never depends on the parser.
            pass
        try:
            return json.loads(self.data)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError and an int past the digit limit;
            # RecursionError, a hostile nesting depth.
            raise ProtocolError("malformed JSON in SSE data", line=self.data[:MAX_QUOTE]) from exc


# The direct route builds its events with ``_new(ServerSentEvent, (event, data, id,
# retry))``: 0.12 µs, where the class's own keyword-handling ``__new__`` takes 0.21.
_new = tuple.__new__


class SSEDecoder:
    """Turns the bytes of an event stream into events, one network read at a time.

    Feed it each read with ``feed`` and call ``flush`` once at the end of the
    stream. After a ``ProtocolError`` the decoder's state is unspecified: the stream
    is broken and should be abandoned.

    Args:
        max_event_bytes: the most one event's ``data`` lines may hold together, field
            names included and line endings not: what the decoder keeps while the event
            arrives. Complete lines count in characters, a line still arriving in bytes
            (the same for ASCII).

    Example:
        >>> decoder = SSEDecoder()
        >>> decoder.feed(b"data: hel")
        []
        >>> decoder.feed(b"lo\\n\\n")
        [ServerSentEvent(event='message', data='hello', id=None, retry=None)]
    """

    __slots__ = (
        "_data",
        "_event",
        "_head",
        "_last_id",
        "_max",
        "_partial",
        "_partial_size",
        "_pending_cr",
        "_reconnect",
        "_retry",
        "_size",
        "_started",
    )

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        # Line splitting.
        self._started = False  # past the place where a BOM may be
        self._head = b""  # the first bytes, while they could still be a split BOM
        self._pending_cr = False  # the last read ended with CR; an LF next is part of it
        self._partial: list[bytes] = []  # pieces of the incomplete last line
        self._partial_size = 0  # their total length
        # Event parsing (the spec's buffers).
        self._data: list[str] = []  # joined once at dispatch, not appended to a str
        self._size = 0  # the length of the lines in _data, "data: " included
        self._event = ""
        self._retry: int | None = None
        self._last_id: str | None = None
        self._reconnect: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last event ID seen so far (``None`` before any ``id`` field).

        Like the spec's "last event ID buffer", this changes as soon as the ``id``
        field is read, even if its event is never dispatched; it is what to send as
        ``Last-Event-ID`` when reconnecting.
        """
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The latest reconnection time in milliseconds (``None`` if never sent)."""
        return self._reconnect

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode one read of the stream.

        Args:
            chunk: the next bytes of the stream, cut anywhere.

        Returns:
            The events completed by this chunk, in order (often none).

        Raises:
            ProtocolError: a complete line is not valid UTF-8.
            EventTooLargeError: an event passed ``max_event_bytes``.
        """
        if not self._started:
            # The BOM may itself arrive in pieces: hold on to a prefix of it.
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk
                return []
            self._started = True
            self._head = b""
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if not chunk:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if 13 in chunk:  # b"\r" in chunk, by memchr: 20 ns, not 150, for a 200-byte read
            # Normalise to LF so that one split does; a CR at the very end is
            # already a complete line ending, but the LF that may follow in the next
            # read must not then count as a second one.
            self._pending_cr = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n") + 1
        if not end:
            self._partial.append(chunk)
            self._partial_size += len(chunk)
            if self._size + self._partial_size > self._max:
                raise _too_large(self._max, start_of(self._partial))
            return []
        if self._partial:
            self._partial.append(chunk[:end])
            block = b"".join(self._partial)
            self._partial = []
            self._partial_size = 0
        else:
            block = chunk[:end] if end < len(chunk) else chunk
        if end < len(chunk):
            rest = chunk[end:]
            self._partial = [rest]
            self._partial_size = len(rest)
        # One decode for all the complete lines of the read: LF never occurs inside
        # a UTF-8 multi-byte sequence, so this is the same as decoding line by line.
        # Decoded here, decode_lines only wording the error: 0.06 µs less per read.
        try:
            # Passed on unnamed, so that ``_blocks`` holds the only reference and can
            # let go of it once cut (see there).
            return self._blocks(block.decode())
        except UnicodeDecodeError:
            # From the decode: ``_blocks`` decodes nothing.
            decode_lines(block, "event stream")  # raises, quoting the line
            raise

    def flush(self) -> list[ServerSentEvent]:
        """End the stream.

        A last line without a line ending is processed (so an ``id`` or ``retry`` in
        it still counts), then the event being built, which never got its blank
        line, is discarded as the spec requires. The decoder is then ready for a
        new stream; ``last_event_id`` and ``retry`` are kept, as for a reconnection.

        Returns:
            The events completed at the end of the stream: always empty, since only
            a blank line dispatches an event; returned for symmetry with ``feed``.

        Raises:
            ProtocolError: the last line is not valid UTF-8.
            EventTooLargeError: the last line passed ``max_event_bytes``.
        """
        pieces = self._partial
        if self._head:
            pieces = [self._head]  # a stream of one or two bytes of a BOM
        self._started = False
        self._head = b""
        self._pending_cr = False
        self._partial = []
        self._partial_size = 0
        try:
            events = self._lines([decode_lines(b"".join(pieces), "event stream")]) if pieces else []
        finally:
            self._data = []
            self._size = 0
            self._event = ""
            self._retry = None
        return events

    def _blocks(self, text: str) -> list[ServerSentEvent]:
        """Interpret complete lines (``text`` ends with LF), returning the events they
        dispatch.

        The text is cut at its blank lines. A block that is one ``data: `` line and
        nothing else (the whole stream of OpenAI's chat and completions APIs, and of
        the servers compatible with them) becomes its event directly; any other block,
        and the lines after the last blank line, go through ``_lines``, line by line.
        Both give the same events (a hypothesis test feeds both arbitrary streams, cut
        anywhere). With it, the tuple record and the trims in ``feed``, decoding
        OpenAI's chat stream takes 0.51 µs per event where line by line took 0.78 on
        64 KiB reads, and 1.00 where it took 1.70 on reads of one event each, as the
        network delivers tokens (min of 200 runs of 2,000 events of
        bench/_server.py's bytes).
        """
        one = len(text) - 2
        if text.find("\n") == one:
            # One line, then a blank one: a read of one event, as the network delivers a
            # stream token by token. find is a memchr where split walks the text char by
            # char: 0.15 µs instead of 0.26 for a 218-byte event (timeit, min of 10).
            blocks = [text[:one]]
            tail = ""
        else:
            blocks = text.split("\n\n")
            tail = blocks.pop()  # the lines after the last blank line, each with its LF
        events: list[ServerSentEvent] = []
        if blocks and (self._data or self._event or self._retry is not None):
            # Mid-event: the first block ends the event the previous reads began.
            events = self._lines([*blocks.pop(0).split("\n"), ""])
        # The read's text, then each block, let go of as soon as it is used: a 64 KiB
        # read then peaks at about 0.20 MiB instead of 0.30 (tracemalloc), for about
        # 0.02 µs an event (the pops).
        del text
        blocks.reverse()
        pop = blocks.pop
        limit = self._max
        while blocks:
            block = pop()
            if block.startswith("data: ") and "\n" not in block and len(block) <= limit:
                events.append(_new(ServerSentEvent, ("message", block[6:], self._last_id, None)))
            else:
                events += self._lines([*block.split("\n"), ""])
        if tail:
            events += self._lines(tail[:-1].split("\n"))
        return events

    def _lines(self, lines: list[str]) -> list[ServerSentEvent]:
        """Interpret complete lines, returning the events they dispatch."""
        events: list[ServerSentEvent] = []
        data = self._data
        size = self._size
        limit = self._max
        for line in lines:
            if not line:
                if data:
                    if size > limit:
                        raise _too_large(limit, data[0])
                    events.append(
                        ServerSentEvent(
                            self._event or "message",
                            data[0] if len(data) == 1 else "\n".join(data),
                            self._last_id,
                            self._retry,
                        )
                    )
                    data = self._data = []
                    size = 0
                # The spec resets the type even when nothing is dispatched.
                self._event = ""
                self._retry = None
            elif line.startswith("data:"):
                # The overwhelmingly common line, so it skips the general parsing.
                data.append(line[6:] if line.startswith(" ", 5) else line[5:])
                size += len(line)
            elif line[0] != ":":  # lines starting with a colon are comments
                self._field(line)
        if size > limit:
            raise _too_large(limit, data[0])
        self._size = size
        return events

    def _field(self, line: str) -> None:
        """Apply a ``name:value`` (or bare ``name``) line other than ``data:``."""
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":  # a bare "data": an empty data line
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            # A NUL is ignored rather than truncated so that it can never be echoed
            # back in a Last-Event-ID header.
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            try:
                retry = int(value)
            except ValueError:  # more digits than int() accepts: no sane delay
                return
            self._retry = self._reconnect = retry
        # Any other field name is ignored, as the spec says.


def _too_large(limit: int, start: str | bytes) -> EventTooLargeError:
    if isinstance(start, bytes):
        start = start[:MAX_QUOTE].decode("utf-8", "replace")
    return EventTooLargeError(
        f"an SSE event of more than {limit:,} bytes (max_event_bytes): abandoned",
        limit=limit,
        line=start[:MAX_QUOTE],
    )
