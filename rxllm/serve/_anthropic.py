"""The ``anthropic`` format: the event stream of Anthropic's Messages API.

As Anthropic streams ``POST /v1/messages``, each event's type both on its ``event:``
line and in its data: ``message_start`` (the message, id ``msg_...``, model, usage so
far: input tokens only if the first chunk reported them, as most sources report usage
last), then content blocks, each ``content_block_start``, its ``content_block_delta``s
and ``content_block_stop``, then ``message_delta`` (the stop reason in Anthropic's
words and the usage, cumulative) and ``message_stop``:

- text is a ``text`` block of ``text_delta``s; reasoning a ``thinking`` block of
  ``thinking_delta``s, with no ``signature_delta``: a signature is Anthropic's proof
  that it wrote the thinking, and a served reply (whatever model made it) has none to
  give, so the block's ``signature`` stays empty. A client must not send such a block
  back to Anthropic, which would refuse it; rxllm's own clients keep it as reasoning;
- a tool call is a ``tool_use`` block (its id and name at the start, ``input: {}``)
  whose input streams as ``input_json_delta`` pieces. Tool blocks stay open until the
  reply ends, so a source that interleaves the pieces of several calls is still written
  whole (a delta names its block by ``index``); a text or thinking block closes when
  another block starts. A refusal (OpenAI's ``refusal`` field) is text, as Anthropic
  writes its own refusals, with ``stop_reason: "refusal"`` when the chunks say so.

Stop reasons come from the chunks' metadata: Anthropic's own words pass through
(``end_turn``, ``max_tokens``, ``stop_sequence``, ``tool_use``, ``pause_turn``,
``refusal``), the chat API's are translated (``length`` is ``max_tokens``,
``content_filter`` is ``refusal``); with none given, ``tool_use`` if the reply called a
tool, else ``end_turn``. Usage counts cache reads and writes apart from
``input_tokens``, as Anthropic does (rxllm's ``Usage`` counts them in it, as LangChain
does). A failure after the first byte is an ``error`` event,
``{"type": "error", "error": {"type": ..., "message": ...}}``, which the official SDK
raises as an ``APIStatusError``.
"""

from __future__ import annotations

from typing import Any

from ..schema import ToolCallChunk
from ._chunks import finish_reason
from ._encoder import ChunkEncoder, dumps, new_id
from ._errors import ClientError
from ._sse import Event

__all__ = ["AnthropicEncoder"]

#: The chat API's finish reasons in Anthropic's words.
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_ANTHROPIC_STOPS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
)
#: The error types Anthropic's API sends; any other kind is an ``api_error``.
_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "timeout_error",
        "api_error",
        "overloaded_error",
    }
)


class AnthropicEncoder(ChunkEncoder):
    """``anthropic``: what ``POST /v1/messages`` streams."""

    part_of = {"reasoning": "thinking", "refusal": "text", "text": "text"}
    text_event = "content_block_delta"

    def __init__(self, model: str | None = None) -> None:
        super().__init__(model)
        self.id = new_id("msg_")
        self.blocks = 0
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self._text_tail = "}}"

    def _open(self) -> list[Event]:
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model or "rxllm",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage({"input_tokens": 0, "output_tokens": 0}),
        }
        return [Event(dumps({"type": "message_start", "message": message}), "message_start")]

    def _usage(self, base: dict[str, int]) -> dict[str, int]:
        usage = self.usage
        if usage is None:
            return base
        details = (usage.model_extra or {}).get("input_token_details") or {}
        read_, written = details.get("cache_read") or 0, details.get("cache_creation") or 0
        return {
            "input_tokens": max(usage.input_tokens - read_ - written, 0),
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read_,
            "output_tokens": usage.output_tokens,
        }

    def _note(self, metadata: Any) -> None:
        given = metadata.get("stop_reason")
        if isinstance(given, str) and given in _ANTHROPIC_STOPS:
            self.stop_reason = given
        else:
            reason = finish_reason(metadata)
            if reason is not None:
                self.stop_reason = _STOP_REASONS.get(reason, "end_turn")
        sequence = metadata.get("stop_sequence")
        if isinstance(sequence, str):
            self.stop_sequence = sequence

    def _open_part(self, part: str, events: list[Event]) -> int:
        if part == "thinking":
            return self._start(events, {"type": "thinking", "thinking": "", "signature": ""})
        index = self._start(events, {"type": "text", "text": ""})
        self._text_head = (
            f'{{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":'
        )
        return index

    def _part_delta(self, index: int, kind: str, text: str) -> list[Event]:
        if kind == "reasoning":
            return [self._block_delta(index, {"type": "thinking_delta", "thinking": text})]
        return [self._block_delta(index, {"type": "text_delta", "text": text})]

    def _close_part(self, part: str, index: int) -> list[Event]:
        return [self._stop(index)]

    def _start(self, events: list[Event], block: dict[str, Any]) -> int:
        index = self.blocks
        self.blocks += 1
        data = {"type": "content_block_start", "index": index, "content_block": block}
        events.append(Event(dumps(data), "content_block_start"))
        return index

    def _open_call(self, call: ToolCallChunk, events: list[Event]) -> int:
        block = {"type": "tool_use", "id": call.id or new_id("toolu_"), "name": call.name or "",
                 "input": {}}  # fmt: skip
        return self._start(events, block)

    def _call_delta(self, index: int, args: str) -> Event:
        return self._block_delta(index, {"type": "input_json_delta", "partial_json": args})

    @staticmethod
    def _block_delta(index: int, delta: dict[str, Any]) -> Event:
        data = {"type": "content_block_delta", "index": index, "delta": delta}
        return Event(dumps(data), "content_block_delta")

    @staticmethod
    def _stop(index: int) -> Event:
        return Event(dumps({"type": "content_block_stop", "index": index}), "content_block_stop")

    def _end(self) -> list[Event]:
        events = [self._stop(index) for index in self.calls.values()]
        stop = self.stop_reason or ("tool_use" if self.calls else "end_turn")
        delta = {"stop_reason": stop, "stop_sequence": self.stop_sequence}
        data = {"type": "message_delta", "delta": delta, "usage": self._usage({"output_tokens": 0})}
        events.append(Event(dumps(data), "message_delta"))
        events.append(Event(dumps({"type": "message_stop"}), "message_stop"))
        return events

    def fail(self, error: ClientError) -> list[Event]:
        kind = error.kind if error.kind in _ERROR_TYPES else "api_error"
        data = {"type": "error", "error": {"type": kind, "message": error.message}}
        return [Event(dumps(data), "error")]
