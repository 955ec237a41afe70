"""What one item of a served stream says, read the same way for every format.

A served source may emit chat chunks (``AIMessageChunk``), text chunks
(``GenerationChunk``) or plain strings (a pipeline ending in ``text()`` or ``words()``);
``read`` turns each into a ``Piece``, so an encoder knows one shape. Finish reasons are
normalized to the OpenAI chat API's words, which every format's own words map from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from ..schema import AIMessage, AIMessageChunk, GenerationChunk, ToolCallChunk, Usage

__all__ = ["Piece", "finish_reason", "plain_text", "read"]

_NO_METADATA: Mapping[str, Any] = {}


@dataclass(slots=True)
class Piece:
    """The parts of one streamed item that a wire format can carry."""

    text: str = ""
    reasoning: str = ""
    tool_calls: Sequence[ToolCallChunk] = ()
    usage: Usage | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _NO_METADATA)


def read(item: Any) -> Piece:
    """The ``Piece`` of a chunk or a string.

    Raises:
        InvalidInputError: for an item that is not text (a pipeline that ends in
            ``partial_json``, say): serve its events instead, or map it to text.
    """
    kind = type(item)
    if kind is str:
        return Piece(text=item)
    if kind is AIMessageChunk or isinstance(item, AIMessage):
        calls: Sequence[ToolCallChunk] = item.tool_call_chunks if kind is AIMessageChunk else ()
        if not calls and item.tool_calls:  # a whole message, or Ollama's whole calls
            calls = [
                ToolCallChunk(name=c.name, args=json.dumps(c.args), id=c.id, index=i)
                for i, c in enumerate(item.tool_calls)
            ]
        return Piece(
            item.content, item.reasoning, calls, item.usage_metadata, item.response_metadata
        )
    if kind is GenerationChunk or isinstance(item, GenerationChunk):
        return Piece(item.text, item.reasoning, metadata=item.generation_info or _NO_METADATA)
    raise InvalidInputError(
        f"a served stream must emit text or chunks, not {kind.__name__}: serve "
        "format='events', or map the items to text first"
    )


def plain_text(item: Any) -> str:
    """The text of an item that is text and nothing else, else ``""``: a string, or a
    chunk with no reasoning, tool calls, usage or metadata (what ``read`` would make a
    ``Piece`` of text alone). Most items of a stream are; an encoder writes them on a
    direct route, with no ``Piece``."""
    kind = type(item)
    if kind is str:
        text: str = item
        return text
    if kind is AIMessageChunk:
        chunk: AIMessageChunk = item
        if (
            chunk.reasoning
            or chunk.tool_call_chunks
            or chunk.tool_calls
            or chunk.response_metadata
            or chunk.usage_metadata is not None
        ):
            return ""
        return chunk.content
    if kind is GenerationChunk:
        generation: GenerationChunk = item
        return "" if generation.reasoning or generation.generation_info else generation.text
    return ""


#: Each provider's stop reasons in the OpenAI chat API's words.
_REASONS = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}


def finish_reason(metadata: Mapping[str, Any]) -> str | None:
    """The finish reason a chunk's metadata gives, in the chat API's words, or ``None``."""
    for key in ("finish_reason", "stop_reason", "done_reason"):
        reason = metadata.get(key)
        if isinstance(reason, str):
            return _REASONS.get(reason, reason)
    return None
