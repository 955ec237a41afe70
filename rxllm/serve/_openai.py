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

from ._chunks import finish_reason, read
from ._encoder import Encoder, dumps, new_id
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


class _OpenAIEncoder(Encoder):
    """What the two formats share: the envelope, the finish, usage and ``[DONE]``."""

    object_name: str
    id_prefix: str
    reasons: frozenset[str]

    def __init__(self, model: str | None = None, *, include_usage: bool = True) -> None:
        super().__init__(model)
        self.include_usage = include_usage
        self.id = new_id(self.id_prefix)
        self.opened = False
        self.finish: str | None = None
        self.usage: Any = None
        self.tool_calls = False
        # The JSON around a plain text delta, made once the model name is known.
        self._head = ""
        self._tail = ""

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

    def _open(self, metadata: Any) -> list[Event]:
        """What opens the stream; the model name is fixed from here on."""
        self.opened = True
        self.model_from(metadata)
        head, _, tail = self._envelope([self._text_choice("\0")]).partition(dumps("\0"))
        self._head, self._tail = head, tail
        return []

    def _text_choice(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def _note(self, piece: Any) -> None:
        reason = finish_reason(piece.metadata) if piece.metadata else None
        if reason is not None:
            self.finish = reason
        if piece.usage is not None:
            self.usage = piece.usage if self.usage is None else self.usage + piece.usage

    def close(self) -> list[Event]:
        events = [] if self.opened else self._open({})
        reason = self.finish if self.finish in self.reasons else None
        reason = reason or ("tool_calls" if self.tool_calls else "stop")
        events.append(Event(self._envelope([self._finish_choice(reason)])))
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

    def __init__(self, model: str | None = None, *, include_usage: bool = True) -> None:
        super().__init__(model, include_usage=include_usage)
        #: The tool-call index each of the source's call indexes became (0, 1, ...).
        self.calls: dict[Any, int] = {}

    def _text_choice(self, text: str) -> dict[str, Any]:
        return {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}

    def _finish_choice(self, reason: str) -> dict[str, Any]:
        return {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}

    def _open(self, metadata: Any) -> list[Event]:
        super()._open(metadata)
        delta = {"role": "assistant", "content": ""}
        return [Event(self._envelope([{**self._text_choice(""), "delta": delta}]))]

    def feed(self, item: Any) -> list[Event]:
        piece = read(item)
        events = [] if self.opened else self._open(piece.metadata)
        if (
            piece.text
            and not piece.reasoning
            and not piece.tool_calls
            and not piece.metadata
            and piece.usage is None
        ):
            # The common item, a piece of text: only the text is encoded.
            events.append(Event(self._head + dumps(piece.text) + self._tail))
            return events
        self._note(piece)
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
        if delta:
            events.append(Event(self._envelope([{**self._text_choice(""), "delta": delta}])))
        return events

    def _call(self, call: Any) -> dict[str, Any]:
        key = call.index if call.index is not None else object()
        index = self.calls.get(key)
        if index is not None:
            return {"index": index, "function": {"arguments": call.args or ""}}
        index = self.calls[key] = len(self.calls)
        self.tool_calls = True
        return {
            "index": index,
            "id": call.id or new_id("call_"),
            "type": "function",
            "function": {"name": call.name or "", "arguments": call.args or ""},
        }


class OpenAICompletionsEncoder(_OpenAIEncoder):
    """``openai-completions``: what ``POST /v1/completions`` streams."""

    object_name = "text_completion"
    id_prefix = "cmpl-"
    reasons = _COMPLETION_REASONS

    def _text_choice(self, text: str) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": None}

    def _finish_choice(self, reason: str) -> dict[str, Any]:
        return {"text": "", "index": 0, "logprobs": None, "finish_reason": reason}

    def feed(self, item: Any) -> list[Event]:
        piece = read(item)
        events = [] if self.opened else self._open(piece.metadata)
        if piece.metadata or piece.usage is not None:
            self._note(piece)
        if piece.text:
            events.append(Event(self._head + dumps(piece.text) + self._tail))
        return events
