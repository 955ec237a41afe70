"""The ``openai-responses`` format: the event stream of OpenAI's Responses API.

As OpenAI streams ``POST /v1/responses``, every event typed twice (the ``event:`` line
and the data's ``type``) and numbered (``sequence_number``): ``response.created`` and
``response.in_progress``, then the output items one after another, each opened by
``response.output_item.added`` and closed by ``response.output_item.done`` with the
whole item:

- reasoning is a ``reasoning`` item whose summary streams as
  ``response.reasoning_summary_text.delta`` inside one summary part;
- text and refusals are content parts of a ``message`` item
  (``response.output_text.delta`` / ``response.refusal.delta``, each part opened by
  ``response.content_part.added`` and closed by its ``...done`` events);
- a tool call is a ``function_call`` item whose arguments stream as
  ``response.function_call_arguments.delta``. Calls stay open until the reply ends, so
  a source that interleaves the argument pieces of several calls is still written
  whole (the events name their item by ``output_index``).

The reply ends with ``response.completed`` (the whole output and the usage), or
``response.incomplete`` when it was cut (``incomplete_details.reason``:
``max_output_tokens`` for a ``length`` finish, ``content_filter``). A failure after the
first byte is ``response.failed``, the response with ``status: "failed"``, its
``error`` (``code``, ``message``) and the output so far, as OpenAI sends it: the
official SDK yields it as the last event, and ``responses.stream(...)``'s
``get_final_response()`` raises, since no ``response.completed`` came.
"""

from __future__ import annotations

from typing import Any

from ..schema import ToolCallChunk
from ._encoder import ChunkEncoder, dumps, new_id
from ._errors import ClientError
from ._sse import Event, utf8

__all__ = ["OpenAIResponsesEncoder"]

#: A cut reply's finish reason (the chat API's words) as ``incomplete_details.reason``.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}

#: ``ClientError.kind`` as the ``code`` of a failed response's error.
_CODES = {
    "rate_limit_error": "rate_limit_exceeded",
    "invalid_request_error": "invalid_prompt",
}


def _usage(usage: Any) -> dict[str, Any]:
    extra = usage.model_extra or {}
    given = extra.get("input_token_details") or {}
    reasoning = (extra.get("output_token_details") or {}).get("reasoning") or 0
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": given.get("cache_read") or 0,
            "cache_write_tokens": given.get("cache_creation") or 0,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
    }


class _Item:
    """One output item as it streams: its kind, its place, and what it holds so far.

    A message's ``parts`` are ``[kind, pieces]`` pairs (``output_text`` or
    ``refusal``); a reasoning item has one part, its summary; a function call's
    pieces are its arguments.
    """

    __slots__ = ("kind", "id", "index", "parts", "call_id", "name")

    def __init__(self, kind: str, prefix: str, index: int) -> None:
        self.kind = kind
        self.id = new_id(prefix)
        self.index = index
        self.parts: list[tuple[str, list[str]]] = []
        self.call_id = ""
        self.name = ""

    def whole(self, status: str) -> dict[str, Any]:
        """The item as ``response.output_item.done`` and the response's output show it."""
        if self.kind == "reasoning":
            summary = [_part(kind, "".join(pieces)) for kind, pieces in self.parts]
            return {"id": self.id, "type": "reasoning", "summary": summary}
        if self.kind == "message":
            return {
                "id": self.id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [_part(kind, "".join(pieces)) for kind, pieces in self.parts],
            }
        return {
            "id": self.id,
            "type": "function_call",
            "status": status,
            "arguments": "".join(self.parts[0][1]),
            "call_id": self.call_id,
            "name": self.name,
        }


def _part(kind: str, text: str) -> dict[str, Any]:
    if kind == "output_text":
        return {"type": "output_text", "text": text, "annotations": []}
    if kind == "refusal":
        return {"type": "refusal", "refusal": text}
    return {"type": "summary_text", "text": text}


#: The content part each of a piece's texts is, and the events of each kind of part.
_CONTENT = {"reasoning": "summary_text", "refusal": "refusal", "text": "output_text"}
_DELTA = {
    "output_text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "summary_text": "response.reasoning_summary_text.delta",
}


class OpenAIResponsesEncoder(ChunkEncoder):
    """``openai-responses``: what ``POST /v1/responses`` streams."""

    part_of = {"reasoning": "reasoning", "refusal": "message", "text": "message"}
    text_event = "response.output_text.delta"

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.id = new_id("resp_")
        self.sequence = 0
        self.items: list[_Item] = []
        self._text_tail = ',"logprobs":[]}'
        # The JSON of a plain text delta between its sequence number and its text.
        self._text_mid = ""

    def _event(self, kind: str, **fields: Any) -> Event:
        data = dumps({"type": kind, "sequence_number": self.sequence, **fields})
        self.sequence += 1
        return Event(data, kind)

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "model": self.model or "rxllm",
            "output": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": None,
            **fields,
        }

    def _open(self) -> list[Event]:
        response = self._response("in_progress")
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def _plain(self, text: str) -> bytes:
        assert self.current is not None
        self.current[1].parts[-1][1].append(text)
        sequence, self.sequence = self.sequence, self.sequence + 1
        return utf8(
            f"{self._event_line}data: {self._text_head}{sequence}"
            f"{self._text_mid}{dumps(text)}{self._text_tail}\n\n"
        )

    def _open_part(self, part: str, events: list[Event]) -> _Item:
        item = self._add(part, "rs_" if part == "reasoning" else "msg_")
        events.append(self._added(item))
        return item

    def _part_delta(self, item: _Item, kind: str, text: str) -> list[Event]:
        """``text`` added to the item's content part of its kind, opening it (and closing
        the part open before) as needed."""
        events: list[Event] = []
        part = _CONTENT[kind]
        if not item.parts or item.parts[-1][0] != part:
            events += self._close_content(item)
            item.parts.append((part, []))
            events.append(self._part_event(item, "added", _part(part, "")))
            if part == "output_text":
                self._text_head = '{"type":"response.output_text.delta","sequence_number":'
                self._text_mid = dumps(self._part_place(item))[:-1].replace("{", ",", 1)
                self._text_mid += ',"delta":'
        item.parts[-1][1].append(text)
        fields = self._part_place(item)
        events.append(self._event(_DELTA[part], **fields, delta=text, **_logprobs(part)))
        return events

    def _part_place(self, item: _Item) -> dict[str, Any]:
        """The fields that name an item's open part in its events."""
        index = len(item.parts) - 1
        key = "summary_index" if item.kind == "reasoning" else "content_index"
        return {"item_id": item.id, "output_index": item.index, key: index}

    def _part_event(self, item: _Item, stage: str, part: dict[str, Any]) -> Event:
        kind = "reasoning_summary_part" if item.kind == "reasoning" else "content_part"
        return self._event(f"response.{kind}.{stage}", **self._part_place(item), part=part)

    def _close_content(self, item: _Item) -> list[Event]:
        self._text_head = ""
        if not item.parts:
            return []
        kind, pieces = item.parts[-1]
        text = "".join(pieces)
        place = self._part_place(item)
        if kind == "output_text":
            done = self._event("response.output_text.done", **place, text=text, logprobs=[])
        elif kind == "refusal":
            done = self._event("response.refusal.done", **place, refusal=text)
        else:
            done = self._event("response.reasoning_summary_text.done", **place, text=text)
        return [done, self._part_event(item, "done", _part(kind, text))]

    def _close_part(self, part: str, item: _Item) -> list[Event]:
        return self._close_content(item) + [self._item_done(item)]

    def _add(self, kind: str, prefix: str) -> _Item:
        item = _Item(kind, prefix, len(self.items))
        self.items.append(item)
        return item

    def _added(self, item: _Item) -> Event:
        whole = item.whole("in_progress")
        if item.kind == "message":
            whole["content"] = []
        elif item.kind == "reasoning":
            whole["summary"] = []
        return self._event("response.output_item.added", output_index=item.index, item=whole)

    def _item_done(self, item: _Item) -> Event:
        whole = item.whole("completed")
        return self._event("response.output_item.done", output_index=item.index, item=whole)

    def _open_call(self, call: ToolCallChunk, events: list[Event]) -> _Item:
        item = self._add("function_call", "fc_")
        item.call_id = call.id or new_id("call_")
        item.name = call.name or ""
        item.parts.append(("arguments", []))
        events.append(self._added(item))
        return item

    def _call_delta(self, item: _Item, args: str) -> Event:
        item.parts[0][1].append(args)
        return self._call_event("delta", item, delta=args)

    def _call_event(self, stage: str, item: _Item, **fields: Any) -> Event:
        kind = f"response.function_call_arguments.{stage}"
        return self._event(kind, item_id=item.id, output_index=item.index, **fields)

    def _end(self) -> list[Event]:
        events: list[Event] = []
        for item in self.calls.values():
            arguments = "".join(item.parts[0][1])
            events.append(self._call_event("done", item, name=item.name, arguments=arguments))
            events.append(self._item_done(item))
        output = [item.whole("completed") for item in self.items]
        usage = None if self.usage is None else _usage(self.usage)
        cut = _INCOMPLETE.get(self.finish or "")
        if cut is None:
            response = self._response("completed", output=output, usage=usage)
            events.append(self._event("response.completed", response=response))
        else:
            details = {"reason": cut}
            response = self._response(
                "incomplete", output=output, usage=usage, incomplete_details=details
            )
            events.append(self._event("response.incomplete", response=response))
        return events

    def fail(self, error: ClientError) -> list[Event]:
        code = _CODES.get(error.kind, "server_error")
        output = [item.whole("in_progress") for item in self.items]
        response = self._response(
            "failed", output=output, error={"code": code, "message": error.message}
        )
        return [self._event("response.failed", response=response)]


def _logprobs(part: str) -> dict[str, Any]:
    return {"logprobs": []} if part == "output_text" else {}
