"""The ``vercel-ui`` format: the AI SDK's UI message stream protocol, v1.

What ``useChat`` (AI SDK 5 and later) reads from a chat route: one JSON part per
``data:`` line, the response marked with the ``x-vercel-ai-ui-message-stream: v1``
header, the stream ended by ``data: [DONE]``. A reply is one message of one step:
``start`` (its ``messageId``), ``start-step``, then its parts, each opened, grown and
closed by id:

- text: ``text-start``, ``text-delta`` ..., ``text-end``;
- reasoning: ``reasoning-start``, ``reasoning-delta`` ..., ``reasoning-end``;
- a tool call: ``tool-input-start`` (``toolCallId``, ``toolName``), its arguments as
  ``tool-input-delta`` pieces, and, once the reply has ended, ``tool-input-available``
  with the arguments parsed (``input``), or ``tool-input-error`` with the raw text and
  the reason when they are not JSON.

A text or reasoning part ends when another part begins; a tool call stays open until
the reply ends (the protocol names each call by id, so interleaved argument pieces are
written whole). A refusal is text, the one place this protocol has for it. Then
``finish-step`` and ``finish``, with the ``finishReason`` in the AI SDK's words
(``stop``, ``length``, ``tool-calls``, ``content-filter``, ``other``) and, when the
chunks reported usage, ``messageMetadata: {"usage": {"inputTokens", "outputTokens",
"totalTokens"}}``: the protocol has no usage field, and message metadata is where the
AI SDK's docs put it. A failure after the first byte is ``{"type": "error",
"errorText": ...}`` then ``[DONE]``, as the AI SDK's own servers write it; ``useChat``
shows it as the chat's error.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..schema import ToolCallChunk
from ._encoder import ChunkEncoder, dumps, new_id
from ._errors import ClientError
from ._sse import Event

__all__ = ["VercelUIEncoder"]

#: The chat API's finish reasons in the AI SDK's words.
_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "content_filter": "content-filter",
}
_DONE = Event("[DONE]")


def _part(kind: str, **fields: Any) -> Event:
    return Event(dumps({"type": kind, **fields}))


class _Call:
    __slots__ = ("id", "name", "pieces")

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name
        self.pieces: list[str] = []

    def ended(self) -> Event:
        """``tool-input-available``, or ``tool-input-error`` for arguments not JSON."""
        text = "".join(self.pieces)
        try:
            value = json.loads(text) if text.strip() else {}
        except ValueError as error:
            return _part(
                "tool-input-error",
                toolCallId=self.id,
                toolName=self.name,
                input=text,
                errorText=f"the tool call's arguments are not JSON: {error}",
            )
        return _part("tool-input-available", toolCallId=self.id, toolName=self.name, input=value)


class VercelUIEncoder(ChunkEncoder):
    """``vercel-ui``: what an AI SDK chat route streams to ``useChat``."""

    headers: ClassVar[dict[str, str]] = {"x-vercel-ai-ui-message-stream": "v1"}

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.id = new_id("msg-")
        self.parts = 0
        self._text_tail = "}"

    def _open(self) -> list[Event]:
        return [_part("start", messageId=self.id), _part("start-step")]

    def _open_part(self, part: str, events: list[Event]) -> str:
        id = str(self.parts)
        self.parts += 1
        events.append(_part(f"{part}-start", id=id))
        if part == "text":
            self._text_head = f'{{"type":"text-delta","id":{dumps(id)},"delta":'
        return id

    def _part_delta(self, id: str, kind: str, text: str) -> list[Event]:
        return [_part(f"{self.part_of[kind]}-delta", id=id, delta=text)]

    def _close_part(self, part: str, id: str) -> list[Event]:
        return [_part(f"{part}-end", id=id)]

    def _open_call(self, call: ToolCallChunk, events: list[Event]) -> _Call:
        known = _Call(call.id or new_id("call_"), call.name or "")
        events.append(_part("tool-input-start", toolCallId=known.id, toolName=known.name))
        return known

    def _call_delta(self, known: _Call, args: str) -> Event:
        known.pieces.append(args)
        return _part("tool-input-delta", toolCallId=known.id, inputTextDelta=args)

    def _end(self) -> list[Event]:
        events = [call.ended() for call in self.calls.values()]
        events.append(_part("finish-step"))
        reason = self.finish or ("tool_calls" if self.calls else "stop")
        finish: dict[str, Any] = {"finishReason": _FINISH.get(reason, "other")}
        if self.usage is not None:
            usage = self.usage
            finish["messageMetadata"] = {
                "usage": {
                    "inputTokens": usage.input_tokens,
                    "outputTokens": usage.output_tokens,
                    "totalTokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
                }
            }
        return [*events, _part("finish", **finish), _DONE]

    def fail(self, error: ClientError) -> list[Event]:
        return [_part("error", errorText=error.message), _DONE]
