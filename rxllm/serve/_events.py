"""The ``events`` format: the event dicts of ``astream_events``, one per ``data:`` line.

The source is a run's events (``runnable.observe_events(...)`` or
``runnable.astream_events(...)``), each written whole as one JSON object, keys as
LangChain names them (``event``, ``name``, ``run_id``, ``tags``, ``metadata``, ``data``,
``parent_ids``...); what ``data`` holds (chunks, messages, outputs) is written as
pydantic's JSON mode writes it, so ``AIMessageChunk.model_validate(event["data"]
["chunk"])`` gives the chunk back, and anything JSON cannot hold as its ``str``. No
``event:`` line: the type is the object's own ``event`` key.

The stream ends with ``data: [DONE]``, as the OpenAI formats end: a run stopped early
reports no end event, so without it a client could not tell a whole run from a cut
connection. A failure after the first byte is one more object,
``{"event": "error", "data": {"type": ..., "message": ..., "status": ...}}`` (the kinds
of ``ClientError``), and no ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json

from ..errors import InvalidInputError
from ._encoder import Encoder, dumps
from ._errors import ClientError
from ._sse import Event

__all__ = ["EventsEncoder"]

_DONE = Event("[DONE]")


class EventsEncoder(Encoder):
    """``events``: a run's event dicts as JSON lines (``model`` is not used)."""

    def feed(self, item: Any) -> list[Event]:
        if not isinstance(item, Mapping):
            raise InvalidInputError(
                f"format='events' serves event dicts (runnable.observe_events(...) or "
                f"astream_events(...)), not {type(item).__name__}"
            )
        return [Event(to_json(item, fallback=str).decode())]

    def close(self) -> list[Event]:
        return [_DONE]

    def fail(self, error: ClientError) -> list[Event]:
        data = {"type": error.kind, "message": error.message, "status": error.status}
        return [Event(dumps({"event": "error", "data": data}))]
