"""The OpenAI formats: ``openai-chat`` (``chat.completion.chunk`` objects) and
``openai-completions`` (``text_completion`` objects), each ending with ``data: [DONE]``.

As OpenAI streams them: a first chat chunk with the role, one chunk per delta, a chunk
with the finish reason and an empty delta, then (when the client asked for it with
``stream_options.include_usage``) a usage chunk with no choices. Reasoning goes in
``delta.reasoning_content``, where llama.cpp's server, vLLM and DeepSeek put it and
OpenAI-compatible clients look for it. An error after the first byte is a
``data: {"error": {...}}`` line, which the official SDK raises as an ``APIError``.
"""

from __future__ import annotations

from typing import Any

from ..schema import ToolCallChunk
from ._chunks import Piece
from ._encoder import ChunkEncoder, dumps, new_id
from ._errors import ClientError
from ._sse import Event

__all__ = ["OpenAIChatEncoder", "OpenAICompletionsEncoder"]

_DONE = Event("[DONE]")

#: The finish reasons each API's clients know; strict ones refuse any other (an Ollama
#: ``done_reason`` of ``"load"``, a chat reason in a completion), which becomes "stop".
_CHAT_REASONS = frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"})
_COMPLETION_REASONS = frozenset({"stop", "length", "content_filter"})


def _usage(usage: Any) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
    }


def _error(error: ClientError) -> Event:
    return Event(dumps({"error": {"message": error.message, "type": error.kind, "param": None,
                                  "code": None}}))  # fmt: skip


class _OpenAIEncoder(ChunkEncoder):
    """What the two formats share: the envelope, the finish, usage and ``[DONE]``."""

    object_name: str
    id_prefix: str
    reasons: frozenset[str]

    def __init__(self, model: str | None = None, *, include_usage: bool = True) -> None:
        super().__init__(model)
        self.include_usage = include_usage
        self.id = new_id(self.id_prefix)

    def _envelope(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        return dumps(
            {
                "id": self.id,
                "object": self.object_name,
                "created": self.created,
                "model": self.model or "rxllm",
                "choices": choices,
                **extra,
            }
        )

    def _open(self) -> list[Event]:
        """Nothing yet; every text delta from here on is a plain one (the model is known)."""
        envelope = self._envelope([self._text_choice("\0")])
        # The last: the text comes after the model, whose name may be "\0" too.
        self._text_head, _, self._text_tail = envelope.rpartition(dumps("\0"))
        return []

    def _text_choice(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def _end(self) -> list[Event]:
        reason = self.finish if self.finish in self.reasons else None
        reason = reason or ("tool_calls" if self.calls else "stop")
        events = [Event(self._envelope([self._finish_choice(reason)]))]
        if self.include_usage and self.usage is not None:
            events.append(Event(self._envelope([], usage=_usage(self.usage))))
        events.append(_DONE)
        return events

    def _finish_choice(self, reason: str) -> dict[str, Any]:
        raise NotImplementedError

    def fail(self, error: ClientError) -> list[Event]:
        return [_error(error)]


class OpenAIChatEncoder(_OpenAIEncoder):
    """``openai-chat``: what ``POST /v1/chat/completions`` streams."""

    object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl-"
    reasons = _CHAT_REASONS

    def _text_choice(self, text: str) -> dict[str, Any]:
        return {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}

    def _finish_choice(self, reason: str) -> dict[str, Any]:
        return {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}

    def _open(self) -> list[Event]:
        super()._open()
        delta = {"role": "assistant", "content": ""}
        return [Event(self._envelope([{**self._text_choice(""), "delta": delta}]))]

    def _encode(self, piece: Piece) -> list[Event]:
        """One chunk with all of the piece in its delta."""
        delta: dict[str, Any] = {}
        if piece.reasoning:
            delta["reasoning_content"] = piece.reasoning
        if piece.text:
            delta["content"] = piece.text
        refusal = piece.metadata.get("refusal")
        if isinstance(refusal, str) and refusal:
            delta["refusal"] = refusal
        if piece.tool_calls:
            delta["tool_calls"] = [self._call(call) for call in piece.tool_calls]
        if not delta:
            return []
        return [Event(self._envelope([{**self._text_choice(""), "delta": delta}]))]

    def _call(self, call: ToolCallChunk) -> dict[str, Any]:
        """A tool call's piece; the source's call indexes become 0, 1, ... in turn."""
        key = call.index if call.index is not None else object()
        index = self.calls.get(key)
        if index is not None:
            return {"index": index, "function": {"arguments": call.args or ""}}
        index = self.calls[key] = len(self.calls)
        return {
            "index": index,
            "id": call.id or new_id("call_"),
            "type": "function",
            "function": {"name": call.name or "", "arguments": call.args or ""},
        }


class OpenAICompletionsEncoder(_OpenAIEncoder):
    """``openai-completions``: what ``POST /v1/completions`` streams: text only."""

    object_name = "text_completion"
    id_prefix = "cmpl-"
    reasons = _COMPLETION_REASONS

    def _text_choice(self, text: str) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": None}

    def _finish_choice(self, reason: str) -> dict[str, Any]:
        return {"text": "", "index": 0, "logprobs": None, "finish_reason": reason}

    def _encode(self, piece: Piece) -> list[Event]:
        return [Event(self._envelope([self._text_choice(piece.text)]))] if piece.text else []
