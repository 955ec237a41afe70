"""Server-sent events on the way out: one event's frame, as the SSE spec writes it.

The mirror of ``rxllm._http._sse``, which reads them: ``event:``, ``id:`` and one
``data:`` line per line of the data, then a blank line.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "frame"]


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event before framing: its data, and its type where the format
    names one (Anthropic's and the Responses API's events do; OpenAI chat's do not)."""

    data: str
    event: str | None = None


def frame(event: Event, id: str | None = None) -> bytes:
    """The bytes of one event, with ``id`` if given (for ``Last-Event-ID``)."""
    head = ""
    if event.event is not None:
        head += f"event: {event.event}\n"
    if id is not None:
        head += f"id: {id}\n"
    data = event.data
    if "\n" in data or "\r" in data:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        body = "".join(f"data: {line}\n" for line in lines)
    else:
        body = f"data: {data}\n"
    return f"{head}{body}\n".encode()
