"""Server-sent events on the way out: one event's frame, as the SSE spec writes it.

The mirror of ``rxllm._http._sse``, which reads them: ``id:``, ``event:`` and one
``data:`` line per line of the data, then a blank line. An encoder gives each event as
an ``Event``, or, on its direct route for the commonest item, as the bytes of its frame
already written (``Outgoing``); ``frame`` adds the ``id:`` to those as to the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Event", "Outgoing", "frame", "frames", "utf8"]

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event before framing: its data, and its type where the format
    names one (Anthropic's and the Responses API's events do; OpenAI chat's do not)."""

    data: str
    event: str | None = None


#: An event as an encoder gives it: an ``Event``, or its frame with no ``id:`` line.
Outgoing = Event | bytes


def frame(event: Outgoing, id: str | None = None) -> bytes:
    """The bytes of one event, with ``id`` if given (for ``Last-Event-ID``).

    The ``id:`` line comes first, so an event framed already takes it by a prefix.
    """
    head = "" if id is None else f"id: {id}\n"
    if isinstance(event, bytes):
        return head.encode() + event if head else event
    if event.event is not None:
        head += f"event: {event.event}\n"
    data = event.data
    if "\n" in data or "\r" in data:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        body = "".join(f"data: {line}\n" for line in lines)
    else:
        body = f"data: {data}\n"
    return utf8(f"{head}{body}\n")


def frames(events: Iterable[Outgoing]) -> bytes:
    """The bytes of ``events`` one after another, with no ids."""
    return b"".join([event if isinstance(event, bytes) else frame(event) for event in events])


def utf8(text: str) -> bytes:
    """The UTF-8 of the text of events, each lone surrogate written as its JSON escape.

    A provider's JSON may hold one (``"\\ud800"``; Python's ``json`` reads it as it
    is) and ``dumps`` writes it back as it is, in a JSON string, but UTF-8 has no bytes
    for it: escaped, a client's JSON reader gets the same string back.
    """
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub(lambda found: f"\\u{ord(found[0]):04x}", text).encode()
