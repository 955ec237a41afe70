"""What every text operator needs: the text of an item, and items of the same kind.

Operators accept three kinds of item: ``str``, ``GenerationChunk`` (an LLM) and
``AIMessageChunk`` (a chat model). An operator that re-chunks text emits the kind it
receives, so ``stream`` and ``invoke`` keep working after it. Text is re-cut; everything
else a chunk carries (``generation_info``, ``usage_metadata``, ``response_metadata``,
``tool_call_chunks``) is collected by a ``Rechunker`` and put on the next chunk it
emits, the flushed tail at the latest, so the sum of the output chunks still carries it
all. A chunk that carries nothing but text costs nothing extra.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..schema import (
    AIMessageChunk,
    BaseMessage,
    GenerationChunk,
    merge_generation_chunks,
    merge_message_chunks,
    text_of,
)

__all__ = [
    "EXTEND",
    "GRAPHEME",
    "Rechunker",
    "is_token",
    "merge",
    "text_if_any",
    "text_of",
    "with_text",
]


def text_if_any(item: Any) -> str:
    """The text of an item; ``""`` for an item that is not text (a parsed object from
    ``partial_json``), which operators that measure or keep text pass through."""
    kind = type(item)
    if kind is str:
        return item  # type: ignore[no-any-return]
    if kind is GenerationChunk:
        return item.text  # type: ignore[no-any-return]
    if isinstance(item, BaseMessage | GenerationChunk | str):
        return text_of(item)
    return ""


def is_token(item: Any) -> bool:
    """Whether ``item`` is generated output: text, reasoning or a tool call, or an item
    that is not text at all (a parsed object). Empty placeholders (``""``, a role-only
    chunk, a usage-only chunk) are not: the one meaning of "first token" for
    ``first_token_timeout``, ``on_first_token`` and ``race``."""
    if isinstance(item, str):
        return bool(item)
    if isinstance(item, BaseMessage | GenerationChunk):
        return bool(
            text_of(item)
            or getattr(item, "reasoning", None)
            or getattr(item, "tool_call_chunks", None)
            or getattr(item, "tool_calls", None)
        )
    return True


def with_text(item: Any, text: str) -> Any:
    """A copy of ``item`` with its text replaced; everything else kept."""
    if type(item) is str:
        return text
    if type(item) is GenerationChunk:
        # Built anew rather than ``model_copy``-ed: half the time, on the hot path.
        return GenerationChunk(**{**item.__dict__, "text": text, **(item.model_extra or {})})
    if isinstance(item, BaseMessage):
        return item.model_copy(update={"content": text})
    if isinstance(item, GenerationChunk):
        return item.model_copy(update={"text": text})
    return text


def merge(items: Sequence[Any]) -> Any:
    """Several items of one kind as one: strings join, chunks add up."""
    if len(items) == 1:
        return items[0]
    first = items[0]
    if type(first) is str:
        return "".join(items)
    if isinstance(first, AIMessageChunk):
        return merge_message_chunks(items)
    if isinstance(first, GenerationChunk):
        return merge_generation_chunks(items)
    return "".join(text_of(item) for item in items)


def _has_metadata(item: Any) -> bool:
    if isinstance(item, AIMessageChunk):
        return bool(
            item.tool_call_chunks
            or item.tool_calls
            or item.usage_metadata is not None
            or item.response_metadata
            or item.name
        )
    return bool(item.generation_info)


class Rechunker:
    """Builds output items of the kind last fed in, carrying the metadata fed so far.

    One per subscription: ``feed`` each input item (it returns the text), ``make`` each
    output piece, ``leftover`` at the end for the tail and the metadata no piece took.
    """

    __slots__ = ("kind", "message_id", "pending")

    def __init__(self) -> None:
        self.kind: type = str
        self.message_id: str | None = None
        #: Input chunks (text removed) whose metadata is still to be emitted.
        self.pending: list[Any] = []

    def feed(self, item: Any) -> str:
        kind = type(item)
        if kind is str:
            self.kind = str
            return item  # type: ignore[no-any-return]
        text = text_of(item)
        self.kind = kind
        if isinstance(item, AIMessageChunk):
            self.message_id = self.message_id or item.id
        if _has_metadata(item):
            self.pending.append(with_text(item, ""))
        return text

    def make(self, text: str) -> Any:
        kind = self.kind
        if kind is str:
            return text
        if issubclass(kind, AIMessageChunk):
            piece: Any = AIMessageChunk(content=text, id=self.message_id)
        else:
            piece = GenerationChunk(text=text)
        if self.pending:
            pending, self.pending = self.pending, []
            piece = merge([*pending, piece])
        return piece

    def leftover(self, text: str = "") -> Any | None:
        """The last item: ``text`` with the metadata no piece carried; ``None`` if neither."""
        return self.make(text) if text or self.pending else None


# Characters that continue the grapheme cluster before them (UAX #29 Extend, ZWJ and
# SpacingMark, for the scripts an LLM commonly writes): a cut never falls before one.
EXTEND = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
    "\u0900-\u0903\u093a-\u093c\u093e-\u094f\u0951-\u0957\u0962\u0963"
    "\u0981-\u0983\u09bc\u09be-\u09cd\u09d7\u0a01-\u0a03\u0a3c-\u0a51\u0a70\u0a71\u0a75"
    "\u0a81-\u0a83\u0abc\u0abe-\u0acd\u0b01-\u0b03\u0b3c\u0b3e-\u0b57\u0b82\u0bbe-\u0bcd"
    "\u0bd7\u0c00-\u0c04\u0c3e-\u0c56\u0c81-\u0c83\u0cbc-\u0cd6\u0d00-\u0d03\u0d3e-\u0d57"
    "\u0e31\u0e34-\u0e3a\u0e47-\u0e4e\u0eb1\u0eb4-\u0ebc\u0ec8-\u0ecd"
    "\u1ab0-\u1aff\u1dc0-\u1dff\u200c\u200d\u20d0-\u20ff\u302a-\u302f\u3099\u309a"
    "\ufe00-\ufe0f\ufe20-\ufe2f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f\U000e0100-\U000e01ef"
)

#: A user-perceived character (a grapheme cluster): a letter with its combining marks, an
#: emoji with its modifiers and joined parts, a flag's two regional indicators, CRLF. It
#: matches at every position and never matches empty, so its matches tile any text.
GRAPHEME = re.compile(rf"\r\n|[\U0001f1e6-\U0001f1ff]{{2}}|[\s\S](?:\u200d[\s\S]|[{EXTEND}])*")
