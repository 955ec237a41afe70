"""Whole replies, for requests that do not stream: the chunks summed, in each API's shape.

``Reply`` reads the same items the encoders read (through ``_chunks.read``) and sums
them: text, reasoning, tool calls by index, usage, the finish reason and the model's
name. Each API's non-streaming object (a ``chat.completion``, a ``text_completion``, a
Responses ``response``, an Anthropic ``message``, the AI SDK's nothing: it always
streams) is then built from that sum.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..schema import Usage
from ._anthropic import _STOP_REASONS as _ANTHROPIC_STOP
from ._chunks import finish_reason, read
from ._encoder import new_id
from ._openai import _COMPLETION_REASONS
from ._responses import _usage as responses_usage

__all__ = ["Reply", "reply_json"]


@dataclass
class _Call:
    id: str | None = None
    name: str = ""
    args: str = ""


@dataclass
class Reply:
    """The sum of a served stream's items."""

    model: str
    text: str = ""
    reasoning: str = ""
    calls: dict[Any, _Call] = field(default_factory=dict)
    usage: Usage | None = None
    finish: str | None = None

    def feed(self, item: Any) -> None:
        """Add one item of the stream."""
        piece = read(item)
        self.text += piece.text
        self.reasoning += piece.reasoning
        for chunk in piece.tool_calls:
            key = chunk.index if chunk.index is not None else len(self.calls)
            call = self.calls.setdefault(key, _Call())
            call.id = call.id or chunk.id
            call.name = call.name or chunk.name or ""
            call.args += chunk.args or ""
        if piece.usage is not None:
            self.usage = piece.usage if self.usage is None else self.usage + piece.usage
        if piece.metadata:
            self.finish = finish_reason(piece.metadata) or self.finish

    @property
    def finish_reason(self) -> str:
        """The chat API's finish reason: the stream's own, else what the reply shows."""
        return self.finish or ("tool_calls" if self.calls else "stop")

    def _tokens(self) -> tuple[int, int]:
        usage = self.usage or Usage()
        return usage.input_tokens, usage.output_tokens

    def chat_completion(self) -> dict[str, Any]:
        """A ``chat.completion`` object."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text, "refusal": None}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": call.id or new_id("call_"),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.args},
                }
                for call in self.calls.values()
            ]
        choice = {"message": message, "finish_reason": self.finish_reason}
        return self._completion("chat.completion", "chatcmpl-", choice)

    def text_completion(self) -> dict[str, Any]:
        """A ``text_completion`` object."""
        reason = self.finish_reason if self.finish_reason in _COMPLETION_REASONS else "stop"
        choice = {"text": self.text, "finish_reason": reason}
        return self._completion("text_completion", "cmpl-", choice)

    def _completion(self, kind: str, prefix: str, choice: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI completion object of one ``choice``."""
        prompt, completion = self._tokens()
        return {
            "id": new_id(prefix),
            "object": kind,
            "created": _now(),
            "model": self.model,
            "choices": [{"index": 0, "logprobs": None, **choice}],
            "usage": _openai_usage(prompt, completion),
        }

    def response(self) -> dict[str, Any]:
        """A Responses API ``response`` object."""
        output: list[dict[str, Any]] = []
        if self.reasoning:
            output.append(
                {
                    "type": "reasoning",
                    "id": new_id("rs_"),
                    "summary": [{"type": "summary_text", "text": self.reasoning}],
                }
            )
        if self.text or not self.calls:
            output.append(
                {
                    "type": "message",
                    "id": new_id("msg_"),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": self.text, "annotations": []}],
                }
            )
        for call in self.calls.values():
            output.append(
                {
                    "type": "function_call",
                    "id": new_id("fc_"),
                    "call_id": call.id or new_id("call_"),
                    "name": call.name,
                    "arguments": call.args,
                    "status": "completed",
                }
            )
        cut = self.finish_reason == "length"
        return {
            "id": new_id("resp_"),
            "object": "response",
            "created_at": _now(),
            "model": self.model,
            "status": "incomplete" if cut else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "error": None,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": responses_usage(self.usage or Usage()),
        }

    def message(self) -> dict[str, Any]:
        """An Anthropic ``message`` object."""
        content: list[dict[str, Any]] = []
        if self.reasoning:
            content.append({"type": "thinking", "thinking": self.reasoning, "signature": ""})
        if self.text:
            content.append({"type": "text", "text": self.text})
        for call in self.calls.values():
            content.append(
                {
                    "type": "tool_use",
                    "id": call.id or new_id("toolu_"),
                    "name": call.name,
                    "input": _object(call.args),
                }
            )
        prompt, completion = self._tokens()
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": _ANTHROPIC_STOP.get(self.finish_reason, "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }


def _object(args: str) -> Any:
    try:
        return json.loads(args) if args.strip() else {}
    except ValueError:
        return {}


def _openai_usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _now() -> int:
    return int(time.time())


def reply_json(format: str, reply: Reply) -> dict[str, Any]:
    """The non-streaming answer of the API that ``format`` streams."""
    if format == "openai-chat":
        return reply.chat_completion()
    if format == "openai-completions":
        return reply.text_completion()
    if format == "openai-responses":
        return reply.response()
    return reply.message()
