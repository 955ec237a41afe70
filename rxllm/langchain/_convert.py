"""Messages and chunks between rxllm's schema and ``langchain_core``'s, both ways.

Where each piece goes:

============================  ==============================================
rxllm                         LangChain
============================  ==============================================
``content`` (a str)           ``content`` (a str; text blocks of a list read)
``reasoning``                 ``additional_kwargs["reasoning_content"]``
                              (read back also from ``reasoning``/``thinking``
                              content blocks)
``tool_call_chunks``          ``tool_call_chunks`` (dicts)
``tool_calls``                ``tool_calls`` (a chunk's as ``tool_call_chunks``)
``invalid_tool_calls``        ``invalid_tool_calls``
``usage_metadata`` (Usage)    ``usage_metadata`` (a ``UsageMetadata`` dict)
``response_metadata``         ``response_metadata``, as it is
``GenerationChunk.reasoning`` ``generation_info["reasoning_content"]``
============================  ==============================================

rxllm's providers already follow LangChain's streaming rules (one chunk carries the
input tokens, one the ``model_name`` and finish reason), so chunks convert one by one.
rxllm messages carry text only: a LangChain message with an image, audio or file block
is refused with ``InvalidInputError``, never sent without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core import messages as lc
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import GenerationChunk as LCGenerationChunk

from ..errors import InvalidInputError
from ..schema import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    GenerationChunk,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    Usage,
)

__all__ = [
    "chunk_from_langchain",
    "chunk_to_langchain",
    "generation_to_langchain",
    "input_to_langchain",
    "message_from_langchain",
    "message_to_langchain",
    "messages_from_langchain",
    "usage_from_langchain",
    "usage_to_langchain",
]

#: LangChain's key for reasoning text, read by its ``content_blocks`` as a reasoning block.
REASONING_KEY = "reasoning_content"

#: Content blocks that stand for a tool call, which the message's ``tool_calls`` carry.
_TOOL_BLOCKS = frozenset({"tool_use", "tool_call", "tool_call_chunk", "function_call"})
_USAGE_DETAILS = ("input_token_details", "output_token_details")


# -- rxllm -> LangChain ------------------------------------------------------------


def usage_to_langchain(usage: Usage | None) -> UsageMetadata | None:
    """rxllm's ``Usage`` as LangChain's ``UsageMetadata`` dict (details kept)."""
    if usage is None:
        return None
    converted = UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
    )
    extra = usage.model_extra or {}
    for key in _USAGE_DETAILS:
        if isinstance(extra.get(key), Mapping):
            converted[key] = dict(extra[key])  # type: ignore[literal-required]
    return converted


def _reasoning_kwargs(reasoning: str) -> dict[str, Any]:
    return {REASONING_KEY: reasoning} if reasoning else {}


def chunk_to_langchain(chunk: AIMessageChunk) -> lc.AIMessageChunk:
    """One rxllm message chunk as a LangChain ``AIMessageChunk``.

    Complete tool calls a chunk carries become whole ``tool_call_chunks`` without an
    index, so that LangChain keeps each one apart when chunks add up.
    """
    if not (
        chunk.reasoning
        or chunk.tool_call_chunks
        or chunk.tool_calls
        or chunk.usage_metadata
        or chunk.response_metadata
        or chunk.name
    ):
        # Most chunks are content only; LangChain builds those faster from fewer fields.
        return lc.AIMessageChunk(content=chunk.content, id=chunk.id)
    pieces = [
        tool_call_chunk(name=c.name, args=c.args, id=c.id, index=c.index)
        for c in chunk.tool_call_chunks
    ]
    pieces += [
        tool_call_chunk(name=c.name, args=json.dumps(c.args), id=c.id, index=None)
        for c in chunk.tool_calls
    ]
    return lc.AIMessageChunk(
        content=chunk.content,
        id=chunk.id,
        name=chunk.name,
        additional_kwargs=_reasoning_kwargs(chunk.reasoning),
        tool_call_chunks=pieces,
        usage_metadata=usage_to_langchain(chunk.usage_metadata),
        response_metadata=dict(chunk.response_metadata),
    )


def message_to_langchain(message: BaseMessage) -> lc.BaseMessage:
    """One rxllm message as the LangChain message of the same role."""
    if isinstance(message, AIMessageChunk):
        return chunk_to_langchain(message)
    common: dict[str, Any] = {"content": message.content, "id": message.id, "name": message.name}
    if isinstance(message, AIMessage):
        return lc.AIMessage(
            **common,
            additional_kwargs=_reasoning_kwargs(message.reasoning),
            tool_calls=[tool_call(name=c.name, args=c.args, id=c.id) for c in message.tool_calls],
            invalid_tool_calls=[
                invalid_tool_call(name=c.name, args=c.args, id=c.id, error=c.error)
                for c in message.invalid_tool_calls
            ],
            usage_metadata=usage_to_langchain(message.usage_metadata),
            response_metadata=dict(message.response_metadata),
        )
    if isinstance(message, ToolMessage):
        return lc.ToolMessage(**common, tool_call_id=message.tool_call_id)
    if isinstance(message, SystemMessage):
        return lc.SystemMessage(**common)
    if isinstance(message, HumanMessage):
        return lc.HumanMessage(**common)
    return lc.ChatMessage(**common, role=message.type)


def generation_to_langchain(chunk: GenerationChunk) -> LCGenerationChunk:
    """An rxllm text chunk as LangChain's, reasoning in ``generation_info``."""
    info = dict(chunk.generation_info or {})
    if chunk.reasoning:
        info[REASONING_KEY] = chunk.reasoning
    return LCGenerationChunk(text=chunk.text, generation_info=info or None)


def input_to_langchain(value: Any) -> Any:
    """An input for a LangChain runnable: rxllm messages (alone or in a list) converted,
    anything else as it is."""
    if isinstance(value, BaseMessage):
        return message_to_langchain(value)
    if isinstance(value, list) and any(isinstance(item, BaseMessage) for item in value):
        return [input_to_langchain(item) for item in value]
    return value


# -- LangChain -> rxllm ------------------------------------------------------------


def _split_content(content: str | list[Any], *, kind: str) -> tuple[str, str]:
    """The text and the reasoning of LangChain content (a str or a list of blocks).

    Raises:
        InvalidInputError: for a block rxllm's messages can't carry (images, audio,
            files): it would otherwise be dropped without a word.
    """
    if isinstance(content, str):
        return content, ""
    texts: list[str] = []
    reasoning: list[str] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
            continue
        block_type = block.get("type") if isinstance(block, Mapping) else None
        if block_type == "text":
            texts.append(str(block.get("text") or ""))
        elif block_type == "reasoning":
            reasoning.append(_reasoning_of(block))
        elif block_type == "thinking":
            reasoning.append(str(block.get("thinking") or ""))
        elif block_type not in _TOOL_BLOCKS:
            raise InvalidInputError(
                f"a {kind} with a {block_type!r} content block: rxllm messages carry text, "
                "reasoning and tool calls only"
            )
    return "".join(texts), "".join(reasoning)


def _reasoning_of(block: Mapping[str, Any]) -> str:
    """A reasoning block's text: LangChain's standard ``reasoning`` key, or the
    ``summary`` parts of OpenAI's Responses API."""
    if isinstance(block.get("reasoning"), str):
        return str(block["reasoning"])
    summary = block.get("summary")
    if isinstance(summary, list):
        return "".join(str(part.get("text") or "") for part in summary if isinstance(part, Mapping))
    return ""


def _reasoning_from(message: lc.BaseMessage, from_blocks: str) -> str:
    extra = message.additional_kwargs.get(REASONING_KEY)
    return extra if isinstance(extra, str) and extra else from_blocks


def usage_from_langchain(usage: Mapping[str, Any] | None) -> Usage | None:
    """LangChain's ``UsageMetadata`` as rxllm's ``Usage`` (details kept as extra fields)."""
    if usage is None:
        return None
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        total_tokens=usage.get("total_tokens") or 0,
        **{key: dict(usage[key]) for key in _USAGE_DETAILS if usage.get(key)},
    )


def chunk_from_langchain(chunk: lc.AIMessageChunk) -> AIMessageChunk:
    """A LangChain ``AIMessageChunk`` as rxllm's.

    Only its ``tool_call_chunks`` are kept, not the ``tool_calls`` LangChain parses from
    them chunk by chunk: rxllm parses the sum, and would otherwise count each call as
    often as it had pieces.
    """
    content, from_blocks = _split_content(chunk.content, kind="chunk")
    return AIMessageChunk(
        content=content,
        id=chunk.id,
        name=chunk.name,
        reasoning=_reasoning_from(chunk, from_blocks),
        tool_call_chunks=[
            ToolCallChunk(name=c["name"], args=c["args"], id=c["id"], index=c["index"])
            for c in chunk.tool_call_chunks
        ],
        usage_metadata=usage_from_langchain(chunk.usage_metadata),
        response_metadata=dict(chunk.response_metadata),
    )


def message_from_langchain(message: lc.BaseMessage) -> BaseMessage:
    """One LangChain message as the rxllm message of the same role.

    Raises:
        InvalidInputError: for content rxllm can't carry, or a role it does not know.
    """
    if isinstance(message, lc.AIMessageChunk):
        return chunk_from_langchain(message)
    content, from_blocks = _split_content(message.content, kind=f"{message.type} message")
    common: dict[str, Any] = {"content": content, "id": message.id, "name": message.name}
    if isinstance(message, lc.AIMessage):
        return AIMessage(
            **common,
            reasoning=_reasoning_from(message, from_blocks),
            tool_calls=[
                ToolCall(name=c["name"], args=c["args"], id=c["id"]) for c in message.tool_calls
            ],
            invalid_tool_calls=[
                InvalidToolCall(name=c["name"], args=c["args"], id=c["id"], error=c["error"])
                for c in message.invalid_tool_calls
            ],
            usage_metadata=usage_from_langchain(message.usage_metadata),
            response_metadata=dict(message.response_metadata),
        )
    if isinstance(message, lc.ToolMessage):
        return ToolMessage(**common, tool_call_id=message.tool_call_id)
    if isinstance(message, lc.SystemMessage):
        return SystemMessage(**common)
    if isinstance(message, lc.HumanMessage):
        return HumanMessage(**common)
    if isinstance(message, lc.ChatMessage):
        role = {"user": HumanMessage, "system": SystemMessage, "developer": SystemMessage}
        if message.role in role:
            return role[message.role](**common)
        if message.role == "assistant":
            return AIMessage(**common)
    raise InvalidInputError(f"rxllm can't take a LangChain {type(message).__name__}")


def messages_from_langchain(messages: Sequence[lc.BaseMessage]) -> list[BaseMessage]:
    """A LangChain conversation as rxllm messages (see ``message_from_langchain``)."""
    return [message_from_langchain(message) for message in messages]
