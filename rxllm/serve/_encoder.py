"""The shape every wire format's encoder has: items in, server-sent events out.

An encoder is sans-I/O, like the providers' translators it mirrors: ``feed`` takes one
item of the served stream and returns the events it becomes, ``close`` the events that
end a stream that completed, ``fail`` those that end one that failed after its first
byte (the format's own in-band error). Each instance encodes one stream.
``ChunkEncoder`` is what the five formats of chunks share.
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..schema import ToolCallChunk, Usage
from ._chunks import Piece, finish_reason, plain_text, read
from ._errors import ClientError
from ._sse import Event, Outgoing, utf8

__all__ = ["ChunkEncoder", "Encoder", "dumps", "new_id"]


#: Compact JSON, non-ASCII kept as it is (the stream is UTF-8), as the APIs send it.
#: ``json.dumps`` with these options builds this same encoder on every call; one made
#: once writes the same text and saved 1.0 µs of the 3.0 an item cost (a chat chunk of
#: text in openai-chat, encoded and framed; CPU time of 20,000, best of 15 rounds
#: alternating with the old code). ``test_dumps_writes_what_json_dumps_writes`` pins it.
dumps: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def new_id(prefix: str) -> str:
    """A fresh id in the style of the format's own ids (``chatcmpl-...``, ``msg_...``)."""
    return prefix + uuid.uuid4().hex[:24]


class Encoder(ABC):
    """One stream in one wire format.

    Args:
        model: the model name the events report; when ``None``, the name a chunk's
            metadata gives (``model_name``), else ``"rxllm"``.
    """

    #: Headers the format's clients look for, beside ``Content-Type: text/event-stream``.
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.created = int(time.time())

    def model_from(self, metadata: Any) -> str:
        """The model name to report, learnt from the first chunk that names one."""
        if self.model is None:
            named = metadata.get("model_name") or metadata.get("model")
            if isinstance(named, str) and named:
                self.model = named
        return self.model or "rxllm"

    @abstractmethod
    def feed(self, item: Any) -> Sequence[Outgoing]:
        """The events one item of the stream becomes (the first also opens the stream)."""

    @abstractmethod
    def close(self) -> list[Event]:
        """The events that end a stream that completed."""

    @abstractmethod
    def fail(self, error: ClientError) -> list[Event]:
        """The events that end a stream that failed after its first byte."""


class ChunkEncoder(Encoder):
    """A stream of chunks in a format that writes a reply part by part.

    What the formats share: each item is read into a ``Piece``; the stream opens on the
    first item (or at ``close``, for a stream with none); the last finish reason given
    is kept and usage is summed. A piece's reasoning, refusal and text each grow the
    open part if it is of their kind (``part_of``), else close it and open their own;
    a tool call opens a part of its own that stays open until the reply ends, so a
    source that interleaves the pieces of several calls (each named by its index) is
    still written whole. A format says how with the hooks, ``_open`` to ``_end``; the
    OpenAI formats, which write no parts, replace ``_encode``.

    Most items are a piece of plain text (``plain_text``) while a text part is open. For
    those a format sets ``_text_head`` and ``_text_tail``, the JSON around the text, and
    such an item takes a direct route to the bytes of its event (``_plain``): one
    ``dumps``, no ``Piece``, ``Event`` or ``frame``. The JSON text holds no raw CR or LF,
    so the event is one ``data:`` line, as ``frame`` would write it.
    """

    #: The part each of a piece's texts (``reasoning``, ``refusal``, ``text``) goes in.
    part_of: ClassVar[Mapping[str, str]] = {"reasoning": "reasoning", "refusal": "text",
                                            "text": "text"}  # fmt: skip
    #: The ``event:`` type of a plain text delta.
    text_event: ClassVar[str | None] = None

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.opened = False
        self.finish: str | None = None
        self.usage: Usage | None = None
        #: The open reasoning or text part: its kind (a value of ``part_of``) and handle.
        self.current: tuple[str, Any] | None = None
        #: The tool calls' handles, by the source's call index.
        self.calls: dict[Any, Any] = {}
        # While set, the JSON before and after a plain text delta's text.
        self._text_head = ""
        self._text_tail = ""
        self._event_line = "" if self.text_event is None else f"event: {self.text_event}\n"

    def feed(self, item: Any) -> Sequence[Outgoing]:
        if self._text_head:
            text = plain_text(item)
            if text:
                return [self._plain(text)]
        piece = read(item)
        if piece.usage is not None:  # before the stream opens: Anthropic's start shows it
            self.usage = piece.usage if self.usage is None else self.usage + piece.usage
        events = [] if self.opened else self._open_stream(piece.metadata)
        if piece.metadata:
            self._note(piece.metadata)
        return events + self._encode(piece) if events else self._encode(piece)

    def close(self) -> list[Event]:
        events = [] if self.opened else self._open_stream({})
        return events + self._close_current() + self._end()

    def _open_stream(self, metadata: Mapping[str, Any]) -> list[Event]:
        self.opened = True
        self.model_from(metadata)
        return self._open()

    def _plain(self, text: str) -> bytes:
        """The framed event of a plain text delta in the open text part.

        Straight to bytes, a chat chunk of text costs 1.0 µs, ``plain_text`` and
        ``frames`` included, where the general route (``read``'s ``Piece``, an
        ``Event``, ``frame``) cost 2.0-2.2 with the same ``dumps`` (openai-chat; 0.8 for
        2.3-2.6 in openai-completions, 1.0 for 2.2 in anthropic, 0.9-1.0 for 2.1 in
        vercel-ui, 1.2-1.5 for 2.7 in openai-responses; CPU time of 20,000, best of 15
        rounds alternating with the old code, two runs).
        ``tests/serve/test_direct_route.py`` pins its bytes to the general route's.
        """
        return utf8(f"{self._event_line}data: {self._text_head}{dumps(text)}{self._text_tail}\n\n")

    def _note(self, metadata: Mapping[str, Any]) -> None:
        """Keep what an item's metadata says about the reply's end."""
        reason = finish_reason(metadata)
        if reason is not None:
            self.finish = reason

    def _encode(self, piece: Piece) -> list[Event]:
        events: list[Event] = []
        if piece.reasoning:
            events += self._delta("reasoning", piece.reasoning)
        refusal = piece.metadata.get("refusal")
        if isinstance(refusal, str) and refusal:
            events += self._delta("refusal", refusal)
        if piece.text:
            events += self._delta("text", piece.text)
        for call in piece.tool_calls:
            key = call.index if call.index is not None else object()
            handle = self.calls.get(key)
            if handle is None:
                events += self._close_current()
                handle = self.calls[key] = self._open_call(call, events)
            if call.args:
                events.append(self._call_delta(handle, call.args))
        return events

    def _delta(self, kind: str, text: str) -> list[Event]:
        part, current = self.part_of[kind], self.current
        if current is not None and current[0] == part:
            return self._part_delta(current[1], kind, text)
        events = self._close_current()
        self.current = current = (part, self._open_part(part, events))
        return events + self._part_delta(current[1], kind, text)

    def _close_current(self) -> list[Event]:
        current, self.current = self.current, None
        self._text_head = ""
        return [] if current is None else self._close_part(*current)

    # -- the hooks ---------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> list[Event]:
        """The events that open the stream (``model`` is known from here on)."""

    def _open_part(self, part: str, events: list[Event]) -> Any:
        """Open a part of kind ``part``: append its events, return its handle."""
        raise NotImplementedError

    def _part_delta(self, handle: Any, kind: str, text: str) -> list[Event]:
        """``text`` (a piece's ``kind`` of text) added to the open part."""
        raise NotImplementedError

    def _close_part(self, part: str, handle: Any) -> list[Event]:
        """The events that close a reasoning or text part."""
        raise NotImplementedError

    def _open_call(self, call: ToolCallChunk, events: list[Event]) -> Any:
        """Open a tool call's part: append its events, return its handle."""
        raise NotImplementedError

    def _call_delta(self, handle: Any, args: str) -> Event:
        """A piece of a tool call's arguments."""
        raise NotImplementedError

    @abstractmethod
    def _end(self) -> list[Event]:
        """The events that end a completed reply, after its last text part closed."""
