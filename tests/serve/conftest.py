"""What the format tests share: encoding without I/O, reading events back, and streams
of chunks drawn by hypothesis together with the reply they add up to."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from rxllm._http._sse import ServerSentEvent, SSEDecoder
from rxllm.schema import AIMessageChunk, ToolCallChunk, Usage
from rxllm.serve._errors import ClientError
from rxllm.serve._sse import frame
from rxllm.serve._stream import encoder_for


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])


def encode(
    items: Iterable[Any], format: str, *, error: ClientError | None = None, **options: Any
) -> bytes:
    """The bytes ``to_sse`` writes for ``items``, straight from the encoder (sans-I/O):
    ending with ``error`` in-band if given, else completed."""
    encoder = encoder_for(format, **options)
    events = [event for item in items for event in encoder.feed(item)]
    events += encoder.close() if error is None else encoder.fail(error)
    return b"".join(frame(event) for event in events)


def events_of(body: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.flush()


def objects(body: bytes) -> list[Any]:
    """The JSON of every event's data but a final ``[DONE]``."""
    return [json.loads(event.data) for event in events_of(body) if event.data != "[DONE]"]


@dataclass
class Expected:
    """What a stream of chunks adds up to: the oracle a client's reading must match."""

    chunks: list[AIMessageChunk] = field(default_factory=list)
    text: str = ""
    reasoning: str = ""
    #: (id, name, arguments) of each call, in the order the calls began.
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    usage: Usage | None = None


def counts(usage: Any) -> tuple[int, int, int] | None:
    """The three token counts of a ``Usage`` (details left out), or ``None``."""
    if usage is None:
        return None
    return (usage.input_tokens, usage.output_tokens, usage.total_tokens)


_TEXT = st.text(max_size=12)
_NONEMPTY = st.text(min_size=1, max_size=12)


@st.composite
def replies(draw: st.DrawFn, *, usage: bool = True) -> Expected:
    """A stream of chat chunks: text, reasoning and tool-call pieces in any order
    (the pieces of one call interleaved with others'), maybe ending with usage."""
    reply = Expected()
    args: dict[int, list[str]] = {}
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["text", "reasoning", "call", "args"]))
        if kind == "text":
            piece = draw(_NONEMPTY)
            reply.text += piece
            reply.chunks.append(AIMessageChunk(content=piece))
        elif kind == "reasoning":
            piece = draw(_NONEMPTY)
            reply.reasoning += piece
            reply.chunks.append(AIMessageChunk(reasoning=piece))
        elif kind == "call" or not args:
            index = len(args)
            piece = draw(_TEXT)
            args[index] = [piece]
            name = draw(st.from_regex(r"[a-z_]{1,8}", fullmatch=True))
            reply.calls.append((f"call_{index}", name, ""))
            call = ToolCallChunk(name=name, id=f"call_{index}", index=index, args=piece)
            reply.chunks.append(AIMessageChunk(tool_call_chunks=[call]))
        else:
            index = draw(st.sampled_from(sorted(args)))
            piece = draw(_NONEMPTY)
            args[index].append(piece)
            call = ToolCallChunk(index=index, args=piece)
            reply.chunks.append(AIMessageChunk(tool_call_chunks=[call]))
    reply.calls = [(id, name, "".join(args[i])) for i, (id, name, _) in enumerate(reply.calls)]
    if usage and draw(st.booleans()):
        given, made = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
        reply.usage = Usage(input_tokens=given, output_tokens=made, total_tokens=given + made)
        reply.chunks.append(AIMessageChunk(usage_metadata=reply.usage))
    return reply
