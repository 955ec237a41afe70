"""The data that flows through rxllm: chunks, messages and usage, as pydantic models.

An LLM (text completion) emits ``GenerationChunk``; a chat model emits
``AIMessageChunk``. Chunks add up with ``+``, so a stream's final output is the sum of
its chunks. Response-side models accept fields they do not know (providers add them);
``coerce_messages``/``coerce_prompt`` turn every accepted input shape into what a model
takes, and reject anything else with ``InvalidInputError`` before any work starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import from_json

from ._internals import unchecked
from .errors import InvalidInputError

__all__ = [
    "AIMessage",
    "AIMessageChunk",
    "BaseMessage",
    "GenerationChunk",
    "HumanMessage",
    "InvalidToolCall",
    "MessageLike",
    "SystemMessage",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "Usage",
    "coerce_messages",
    "coerce_prompt",
    "merge_generation_chunks",
    "merge_message_chunks",
    "text_of",
]

_RESPONSE = ConfigDict(extra="allow")


#: Metadata that streams in pieces, as content does, and is joined rather than replaced
#: when chunks add up: OpenAI sends a refusal in ``delta.refusal`` pieces and the
#: logprobs of each chunk's tokens with that chunk (LangChain joins both the same way).
_JOINED = frozenset({"refusal", "logprobs"})


def _join(left: Any, right: Any) -> Any:
    """Two pieces of one joined value: strings and lists concatenated, dicts joined key
    by key (chat logprobs are ``{"content": [...], "refusal": [...]}``)."""
    if left is None:
        return right
    if right is None:
        return left
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if isinstance(left, list) and isinstance(right, list):
        return left + right
    if isinstance(left, dict) and isinstance(right, dict):
        joined = dict(left)
        for key, value in right.items():
            joined[key] = _join(joined.get(key), value)
        return joined
    return right


def _merge_dicts(
    left: dict[str, Any] | None, right: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Shallow merge where the later value wins, except that ``None`` never overwrites
    and the pieces of a ``_JOINED`` value are joined."""
    if not right:
        return left
    if not left:
        return right
    merged = dict(left)
    for key, value in right.items():
        if key in _JOINED:
            merged[key] = _join(merged.get(key), value)
        elif value is not None or key not in merged:
            merged[key] = value
    return merged


class Usage(BaseModel):
    """Token counts a provider reported; ``+`` sums them.

    Indexing (``usage["input_tokens"]``) works too, for code written against
    LangChain's ``usage_metadata`` dict.
    """

    model_config = _RESPONSE

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        # Provider-specific counts (``input_token_details``, ``cache_read_input_tokens``...)
        # are extra fields: summed too, as LangChain's ``add_usage`` sums them.
        return Usage(
            **_add_counts(self.model_extra or {}, other.model_extra or {}),
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )

    def __getitem__(self, key: str) -> int:
        try:
            value: int = getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None
        return value


def _add_counts(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """Two sets of counts as one: numbers added, nested counts added key by key, anything
    else (a label, a ``None``) the right one's where it has one."""
    total = dict(left)
    for key, value in right.items():
        mine = total.get(key)
        if _is_count(mine) and _is_count(value):
            total[key] = mine + value
        elif isinstance(mine, Mapping) and isinstance(value, Mapping):
            total[key] = _add_counts(mine, value)
        elif value is not None or key not in total:
            total[key] = value
    return total


def _is_count(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _add_usage(left: Usage | None, right: Usage | None) -> Usage | None:
    if left is None:
        return right
    if right is None:
        return left
    return left + right


def _repr_without_no_reasoning(model: BaseModel) -> Iterator[tuple[str | None, Any]]:
    """A model's repr fields, ``reasoning`` left out when there is none: most models
    never reason, and their chunks should read as they did before the field existed."""
    for name, value in BaseModel.__repr_args__(model):
        if name != "reasoning" or value:
            yield name, value


class GenerationChunk(BaseModel):
    """A piece of a text completion. ``str(chunk)`` is its text.

    ``reasoning`` is the model's reasoning ("thinking") that came with this piece, kept
    apart from the answer: see ``AIMessage.reasoning``.
    """

    model_config = _RESPONSE

    text: str = ""
    generation_info: dict[str, Any] | None = None
    reasoning: str = ""

    __repr_args__ = _repr_without_no_reasoning

    def __add__(self, other: GenerationChunk) -> GenerationChunk:
        if not isinstance(other, GenerationChunk):
            return NotImplemented
        return merge_generation_chunks((self, other))

    def __str__(self) -> str:
        return self.text


def _text_chunk(text: str) -> GenerationChunk:
    """``GenerationChunk(text=text, generation_info=None)`` without validation, for
    providers' per-token hot path (1.0 µs instead of 1.4); ``text`` must be a ``str``."""
    return unchecked(
        GenerationChunk,
        {"text": text, "generation_info": None, "reasoning": ""},
        {"text", "generation_info"},
    )


class _GenerationSum:
    """A running ``merge_generation_chunks``: chunks added one at a time, summed at the end.

    It keeps each chunk's text, not the chunk: strings are invisible to the cyclic garbage
    collector, so a run that sums a long stream for its end event costs no collections.
    """

    __slots__ = ("texts", "info", "reasoning")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.info: dict[str, Any] | None = None
        self.reasoning: list[str] = []

    def add(self, chunk: GenerationChunk) -> None:
        self.texts.append(chunk.text)
        if chunk.generation_info:
            self.info = _merge_dicts(self.info, chunk.generation_info)
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)

    def total(self) -> GenerationChunk:
        return GenerationChunk(
            text="".join(self.texts), generation_info=self.info, reasoning="".join(self.reasoning)
        )


def merge_generation_chunks(chunks: Iterable[GenerationChunk]) -> GenerationChunk:
    """Sum many chunks in linear time (``+`` in a loop would copy the text each step)."""
    total = _GenerationSum()
    for chunk in chunks:
        total.add(chunk)
    return total.total()


class BaseMessage(BaseModel):
    """A message in a conversation."""

    model_config = _RESPONSE

    type: str
    content: str = ""
    id: str | None = None
    name: str | None = None


class HumanMessage(BaseMessage):
    """A message from the user."""

    type: Literal["human"] = "human"


class SystemMessage(BaseMessage):
    """Instructions for the model."""

    type: Literal["system"] = "system"


class ToolMessage(BaseMessage):
    """The result of a tool call, sent back to the model."""

    type: Literal["tool"] = "tool"
    tool_call_id: str


class ToolCall(BaseModel):
    """A complete tool call the model asked for, with parsed arguments."""

    model_config = _RESPONSE

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class InvalidToolCall(BaseModel):
    """A tool call whose arguments are not a JSON object."""

    model_config = _RESPONSE

    name: str | None = None
    args: str | None = None
    id: str | None = None
    error: str | None = None


class ToolCallChunk(BaseModel):
    """A piece of a streamed tool call; pieces with the same ``index`` concatenate."""

    model_config = _RESPONSE

    name: str | None = None
    args: str | None = None
    id: str | None = None
    index: int | None = None


class AIMessage(BaseMessage):
    """A complete reply from a chat model.

    ``reasoning`` is the one channel for a model's reasoning, whatever the provider
    calls it: Anthropic's thinking blocks, Ollama's ``thinking``, the
    ``reasoning_content``/``reasoning`` deltas of OpenAI-compatible servers (llama.cpp,
    vLLM, DeepSeek) and the reasoning summaries of OpenAI's Responses API. It streams
    in pieces beside ``content`` (a chunk may carry reasoning and no content) and adds
    up like it. What a provider needs to be sent back with the reasoning (Anthropic's
    signatures) stays in ``response_metadata``.
    """

    type: Literal["ai"] = "ai"
    reasoning: str = ""

    __repr_args__ = _repr_without_no_reasoning
    tool_calls: list[ToolCall] = Field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = Field(default_factory=list)
    usage_metadata: Usage | None = None
    response_metadata: dict[str, Any] = Field(default_factory=dict)


class AIMessageChunk(AIMessage):
    """A piece of a chat model's reply; ``+`` concatenates content and merges the rest.

    An ``AIMessageChunk`` is an ``AIMessage``, so the sum of a stream can stand wherever
    a complete reply is expected; ``to_message()`` also parses streamed tool calls.
    """

    type: Literal["AIMessageChunk"] = "AIMessageChunk"  # type: ignore[assignment]
    tool_call_chunks: list[ToolCallChunk] = Field(default_factory=list)

    def __add__(self, other: AIMessageChunk) -> AIMessageChunk:
        if not isinstance(other, AIMessageChunk):
            return NotImplemented
        return merge_message_chunks((self, other))

    def to_message(self) -> AIMessage:
        """The complete ``AIMessage``, with tool-call arguments parsed from JSON."""
        calls: list[ToolCall] = []
        invalid: list[InvalidToolCall] = []
        for chunk in self.tool_call_chunks:
            args, error = _parse_arguments(chunk.args)
            if args is not None and chunk.name:
                calls.append(ToolCall(name=chunk.name, args=args, id=chunk.id))
            else:
                invalid.append(
                    InvalidToolCall(
                        name=chunk.name,
                        args=chunk.args,
                        id=chunk.id,
                        error=error or "tool call has no name",
                    )
                )
        return AIMessage(
            content=self.content,
            id=self.id,
            name=self.name,
            reasoning=self.reasoning,
            tool_calls=self.tool_calls + calls,
            invalid_tool_calls=self.invalid_tool_calls + invalid,
            usage_metadata=self.usage_metadata,
            response_metadata=self.response_metadata,
        )


def _content_chunk(content: str, id: str | None) -> AIMessageChunk:
    """The ``AIMessageChunk`` of a plain content delta, without validation: the same as
    ``AIMessageChunk(content=content, id=id, tool_call_chunks=[], usage_metadata=None,
    response_metadata={})``, for providers' per-token hot path (1.4 µs instead of 2.7);
    ``content`` must be a ``str`` and ``id`` a ``str`` or ``None``."""
    return unchecked(
        AIMessageChunk,
        {
            "type": "AIMessageChunk",
            "content": content,
            "id": id,
            "name": None,
            "reasoning": "",
            "tool_calls": [],
            "invalid_tool_calls": [],
            "usage_metadata": None,
            "response_metadata": {},
            "tool_call_chunks": [],
        },
        {"content", "id", "tool_call_chunks", "usage_metadata", "response_metadata"},
    )


def _parse_arguments(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Tool-call arguments as a dict, or ``None`` and why not.

    Arguments cut short (the reply reached ``max_tokens`` mid-call) are parsed as far as
    they go, an unfinished string left out, as the Anthropic SDK and LangChain parse
    them: the stop reason in ``response_metadata`` says the call was cut.
    """
    try:
        args = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        try:
            if exc.msg == "Extra data":  # complete, then more: not a call cut short
                raise ValueError(exc.msg) from None
            args = from_json(text or "", allow_partial=True)
        except ValueError:
            return None, f"arguments are not valid JSON: {exc}"
    if not isinstance(args, dict):
        return None, "arguments are not a JSON object"
    return args, None


def _merge_tool_call_chunks(
    left: list[ToolCallChunk], right: list[ToolCallChunk]
) -> list[ToolCallChunk]:
    if not right:
        return left
    merged = list(left)
    for piece in right:
        for i, existing in enumerate(merged):
            if piece.index is not None and existing.index == piece.index:
                merged[i] = ToolCallChunk(
                    name=existing.name or piece.name,
                    args=(existing.args or "") + (piece.args or ""),
                    id=existing.id or piece.id,
                    index=existing.index,
                )
                break
        else:
            merged.append(piece)
    return merged


class _MessageSum:
    """A running ``merge_message_chunks``; like ``_GenerationSum``, it keeps no chunk."""

    __slots__ = (
        "contents",
        "reasoning",
        "id",
        "name",
        "tool_call_chunks",
        "tool_calls",
        "usage",
        "metadata",
    )

    def __init__(self) -> None:
        self.contents: list[str] = []
        self.reasoning: list[str] = []
        self.id: str | None = None
        self.name: str | None = None
        self.tool_call_chunks: list[ToolCallChunk] = []
        self.tool_calls: list[ToolCall] = []
        self.usage: Usage | None = None
        self.metadata: dict[str, Any] | None = None

    def add(self, chunk: AIMessageChunk) -> None:
        self.contents.append(chunk.content)
        self.id = self.id or chunk.id
        self.name = self.name or chunk.name
        # Most chunks carry content only: the merges below are skipped for them.
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)
        if chunk.tool_call_chunks:
            self.tool_call_chunks = _merge_tool_call_chunks(
                self.tool_call_chunks, chunk.tool_call_chunks
            )
        if chunk.tool_calls:
            self.tool_calls = self.tool_calls + chunk.tool_calls
        if chunk.usage_metadata is not None:
            self.usage = _add_usage(self.usage, chunk.usage_metadata)
        if chunk.response_metadata:
            self.metadata = _merge_dicts(self.metadata, chunk.response_metadata)

    def total(self) -> AIMessageChunk:
        return AIMessageChunk(
            content="".join(self.contents),
            id=self.id,
            name=self.name,
            reasoning="".join(self.reasoning),
            tool_call_chunks=self.tool_call_chunks,
            tool_calls=self.tool_calls,
            invalid_tool_calls=[],
            usage_metadata=self.usage,
            response_metadata=self.metadata or {},
        )


def merge_message_chunks(chunks: Iterable[AIMessageChunk]) -> AIMessageChunk:
    """Sum many message chunks in linear time in the length of the content."""
    total = _MessageSum()
    for chunk in chunks:
        total.add(chunk)
    return total.total()


class _Aggregate:
    """``aggregate`` as a running total: items added one at a time, the same result at the
    end, keeping texts rather than chunks (see ``_GenerationSum``).

    Items of one summable type (``str``, ``list``, text or message chunks) are summed as
    they come; an item of another type makes the output the last item.
    """

    __slots__ = ("kind", "parts", "chunks", "last", "count")

    def __init__(self) -> None:
        self.kind: type | None = None  # ``None`` once the types are mixed
        self.parts: list[Any] = []  # strs or lists
        self.chunks: _GenerationSum | _MessageSum | None = None
        self.last: Any = None
        self.count = 0

    def add(self, item: Any) -> None:
        kind = type(item)
        self.count += 1
        self.last = item
        if self.count == 1:
            self.kind = kind
            if kind is GenerationChunk:
                self.chunks = _GenerationSum()
            elif kind is AIMessageChunk:
                self.chunks = _MessageSum()
        elif kind is not self.kind:
            self.kind, self.parts, self.chunks = None, [], None
            return
        if self.chunks is not None:
            self.chunks.add(item)
        elif kind is str or kind is list:
            self.parts.append(item)

    def result(self) -> Any:
        kind = self.kind
        if kind is str:
            return "".join(self.parts)
        if kind is list:
            return [element for part in self.parts for element in part]
        if isinstance(self.chunks, _GenerationSum):
            return self.chunks.total().text
        if isinstance(self.chunks, _MessageSum):
            return self.chunks.total().to_message()
        return self.last  # ``None`` when there were no items


MessageLike = BaseMessage | tuple[str, str] | Mapping[str, Any] | str
"""What a conversation may be made of: messages, ``(role, content)`` pairs,
``{"role": ..., "content": ...}`` dicts (OpenAI's shape) or strings (from the user)."""

_MESSAGE_CLASSES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "user": HumanMessage,
    "ai": AIMessage,
    "assistant": AIMessage,
    "system": SystemMessage,
    "developer": SystemMessage,
    "tool": ToolMessage,
}


def _message_from(role: object, content: object, extra: Mapping[str, Any]) -> BaseMessage:
    if not isinstance(role, str) or role not in _MESSAGE_CLASSES:
        raise InvalidInputError(
            f"unknown message role {role!r}; expected one of {', '.join(sorted(_MESSAGE_CLASSES))}"
        )
    if not isinstance(content, str):
        raise InvalidInputError(f"message content must be a str, not {type(content).__name__}")
    try:
        return _MESSAGE_CLASSES[role](content=content, **extra)
    except ValueError as exc:  # pydantic's ValidationError, e.g. a tool message without an id
        raise InvalidInputError(f"invalid {role!r} message: {exc}") from None


def _coerce_message(item: object) -> BaseMessage:
    if isinstance(item, BaseMessage):
        return item
    if isinstance(item, str):
        return HumanMessage(content=item)
    if isinstance(item, tuple) and len(item) == 2:
        return _message_from(item[0], item[1], {})
    if isinstance(item, Mapping):
        fields = dict(item)
        if "role" not in fields or "content" not in fields:
            raise InvalidInputError(
                f"a message dict needs 'role' and 'content' keys; got {sorted(fields)}"
            )
        return _message_from(fields.pop("role"), fields.pop("content"), fields)
    raise InvalidInputError(
        "a message must be a BaseMessage, a (role, content) tuple, a dict with 'role' and "
        f"'content', or a str; got {type(item).__name__}"
    )


def coerce_messages(value: object) -> list[BaseMessage]:
    """Turn any accepted chat input into a list of messages.

    Some messages may be blank, but not all of them: a conversation with no text in it
    would only make the model ramble.

    Raises:
        InvalidInputError: for an empty or blank prompt, or any shape not listed in
            ``MessageLike``.
    """
    single_pair = isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
    if isinstance(value, str | BaseMessage | Mapping) or single_pair:
        messages = [_coerce_message(value)]
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        messages = [_coerce_message(item) for item in value]
    else:
        raise InvalidInputError(
            "input must be a str, a message, or a list of messages, (role, content) tuples "
            f"or role/content dicts; got {type(value).__name__}"
        )
    if all(not m.content.strip() for m in messages):  # also true of no messages
        raise InvalidInputError("the prompt is empty or blank")
    return messages


_PREFIXES = {"human": "Human", "ai": "AI", "AIMessageChunk": "AI", "system": "System"}


def coerce_prompt(value: object) -> str:
    """Turn any accepted LLM input into a prompt string.

    A conversation is rendered one message a line as ``Human: ...``/``AI: ...``, the way
    LangChain's completion models render one.

    Raises:
        InvalidInputError: for an empty or blank (whitespace only) prompt, or an
            unaccepted shape.
    """
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInputError("the prompt is empty or blank")
        return value
    return "\n".join(
        f"{_PREFIXES.get(m.type, m.type.capitalize())}: {m.content}" for m in coerce_messages(value)
    )


def text_of(item: Any) -> str:
    """The text of an item: a ``str`` itself, a chunk's text, a message's content.

    What every text operator reads from the items it gets.

    Raises:
        InvalidInputError: for anything else (a parsed object from ``partial_json``...).
    """
    kind = type(item)
    if kind is str:
        return item  # type: ignore[no-any-return]
    if kind is GenerationChunk:
        return item.text  # type: ignore[no-any-return]
    if isinstance(item, BaseMessage):  # a message chunk, or accumulate()'s AIMessage
        return item.content
    if isinstance(item, GenerationChunk):
        return item.text
    if isinstance(item, str):
        return str(item)
    raise InvalidInputError(
        f"expected text: a str, GenerationChunk or message, not {kind.__name__}"
    )
