"""``anthropic``: read back by the official SDK's accumulator (every event validated
against the SDK's own types first), by its ``messages.stream`` over HTTP, and by
rxllm's own ``ChatAnthropic`` translator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from hypothesis import given
from pydantic import TypeAdapter

from rxllm import AIMessageChunk, GenerationChunk, InternalServerError, RateLimitError
from rxllm.llms import ChatAnthropic
from rxllm.llms._anthropic import AnthropicTranslator
from rxllm.schema import ToolCallChunk, Usage
from rxllm.serve import to_sse
from rxllm.serve._errors import ClientError
from tests.servers.scripted import Reply, ScriptedServer

from .conftest import Expected, collect, counts, encode, events_of, replies

_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)


def sdk_read(body: bytes) -> Any:
    """The official SDK's message after every event of ``body``, each checked first: it
    validates as the SDK's type and its ``event:`` line is its type."""
    message: Any = None
    buffers: dict[int, bytes] = {}
    for sse in events_of(body):
        event = _EVENT.validate_json(sse.data)
        assert sse.event == event.type
        message = accumulate_event(event=event, current_snapshot=message, json_bufs=buffers)
    return message


def rxllm_read(body: bytes) -> AIMessageChunk:
    """What ``ChatAnthropic``'s translator makes of ``body``."""
    translator = AnthropicTranslator()
    total = AIMessageChunk(content="")
    for sse in events_of(body):
        chunk = translator.feed(sse.event, json.loads(sse.data))
        if chunk is not None:
            total = total + chunk
    assert translator.finished
    return total


def blocks(message: Any, kind: str) -> list[Any]:
    return [block for block in message.content if block.type == kind]


@given(replies())
def test_any_stream_is_what_the_sdk_and_rxllm_assemble(reply: Expected) -> None:
    body = encode(reply.chunks, "anthropic", model="m")
    assert [e.event for e in events_of(body)][-2:] == ["message_delta", "message_stop"]
    message = sdk_read(body)
    assert message.model == "m"
    assert message.id.startswith("msg_")
    assert "".join(b.text for b in blocks(message, "text")) == reply.text
    assert "".join(b.thinking for b in blocks(message, "thinking")) == reply.reasoning
    calls = [(b.id, b.name, b.input) for b in blocks(message, "tool_use")]
    assert calls == [(id, name, json.loads(args)) for id, name, args in reply.calls]
    assert message.stop_reason == ("tool_use" if reply.calls else "end_turn")
    expected = reply.usage or Usage()
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
    )

    # The round trip: ChatAnthropic's translator gets the chunks' sum back.
    chunk = rxllm_read(body)
    assert (chunk.content, chunk.reasoning) == (reply.text, reply.reasoning)
    assert [(c.id, c.name, c.args) for c in chunk.tool_call_chunks] == reply.calls
    assert counts(chunk.usage_metadata) == counts(expected)
    # A thinking block makes the translator keep the blocks, as it does Anthropic's.
    assert ("content_blocks" in chunk.response_metadata) == bool(reply.reasoning)


async def test_to_sse_writes_blocks_as_anthropic_does() -> None:
    async def chunks() -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(reasoning="Think", response_metadata={"model_name": "claude-x"})
        yield AIMessageChunk(content="Hé")
        yield AIMessageChunk(content="llo")
        call = ToolCallChunk(name="get", id="toolu_1", index=0, args='{"a"')
        yield AIMessageChunk(tool_call_chunks=[call])
        yield AIMessageChunk(tool_call_chunks=[ToolCallChunk(index=0, args=": 1}")])
        details = {"input_token_details": {"cache_read": 5, "cache_creation": 2}}
        usage = Usage(input_tokens=10, output_tokens=4, total_tokens=14, **details)
        yield AIMessageChunk(
            usage_metadata=usage, response_metadata={"finish_reason": "tool_calls"}
        )

    body = await collect(to_sse(chunks(), format="anthropic"))
    events = events_of(body)
    assert [(e.event, json.loads(e.data).get("index")) for e in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    message = sdk_read(body)
    assert message.model == "claude-x"
    assert [(b.type, getattr(b, "signature", None)) for b in message.content] == [
        ("thinking", ""),  # no signature: see the module's docstring
        ("text", None),
        ("tool_use", None),
    ]
    assert message.content[2].input == {"a": 1}
    assert message.stop_reason == "tool_use"
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens) == (3, 5)
    assert (usage.cache_creation_input_tokens, usage.output_tokens) == (2, 4)
    chunk = rxllm_read(body)
    assert counts(chunk.usage_metadata) == (10, 4, 14)  # cache counted in, as rxllm does
    assert chunk.response_metadata["model_name"] == "claude-x"


@pytest.mark.parametrize(
    ("metadata", "stop"),
    [
        ({"finish_reason": "length"}, "max_tokens"),
        ({"finish_reason": "content_filter"}, "refusal"),
        ({"done_reason": "stop"}, "end_turn"),
        ({"stop_reason": "stop_sequence", "stop_sequence": "##"}, "stop_sequence"),
        ({"stop_reason": "pause_turn"}, "pause_turn"),
    ],
)
def test_stop_reasons_in_anthropics_words(metadata: dict[str, Any], stop: str) -> None:
    body = encode([AIMessageChunk(content="x", response_metadata=metadata)], "anthropic")
    message = sdk_read(body)
    assert message.stop_reason == stop
    assert message.stop_sequence == metadata.get("stop_sequence")
    assert rxllm_read(body).response_metadata["stop_reason"] == stop


def test_message_start_has_the_input_tokens_when_the_first_chunk_reports_them() -> None:
    first = AIMessageChunk(content="x", usage_metadata=Usage(input_tokens=7, total_tokens=7))
    rest = AIMessageChunk(content="y", usage_metadata=Usage(output_tokens=2, total_tokens=2))
    events = events_of(encode([first, rest], "anthropic"))
    assert json.loads(events[0].data)["message"]["usage"]["input_tokens"] == 7
    message = sdk_read(encode([first, rest], "anthropic"))
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 2)


def test_a_refusal_is_text() -> None:
    chunks = [
        AIMessageChunk(response_metadata={"refusal": "I can't"}),
        AIMessageChunk(response_metadata={"refusal": " help.", "finish_reason": "content_filter"}),
    ]
    message = sdk_read(encode(chunks, "anthropic"))
    assert [b.text for b in blocks(message, "text")] == ["I can't help."]
    assert message.stop_reason == "refusal"


@pytest.mark.parametrize("items", [[], [""], [GenerationChunk(text="")]])
def test_an_empty_stream_is_an_empty_message(items: list[Any]) -> None:
    message = sdk_read(encode(items, "anthropic"))
    assert (message.content, message.stop_reason) == ([], "end_turn")


def test_strings_and_text_chunks_are_text() -> None:
    body = encode(["one ", GenerationChunk(text="two", reasoning="r"), "three"], "anthropic")
    message = sdk_read(body)
    assert "".join(b.text for b in blocks(message, "text")) == "one twothree"
    assert rxllm_read(body).reasoning == "r"


@pytest.mark.parametrize(
    ("kind", "sent", "raised"),
    [
        ("rate_limit_error", "rate_limit_error", RateLimitError),
        ("overloaded_error", "overloaded_error", InternalServerError),
        ("api_connection_error", "api_error", InternalServerError),
    ],
)
def test_an_error_after_the_first_byte_is_an_error_event(
    kind: str, sent: str, raised: type[Exception]
) -> None:
    error = ClientError(502, kind, "try later")
    body = encode([AIMessageChunk(content="Hello")], "anthropic", error=error)
    last = events_of(body)[-1]
    assert last.event == "error"
    assert json.loads(last.data) == {
        "type": "error",
        "error": {"type": sent, "message": "try later"},
    }

    with (
        ScriptedServer() as server,
        anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0) as client,
    ):
        server.script(Reply(body=[body]), Reply(body=[body]))
        texts: list[str] = []
        with (
            pytest.raises(anthropic.APIStatusError, match="try later"),
            client.messages.stream(
                model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            ) as stream,
        ):
            texts.extend(stream.text_stream)
        assert texts == ["Hello"]

        chat = ChatAnthropic(model="m", base_url=server.url, api_key="sk-ant-test", max_retries=0)
        with pytest.raises(raised) as caught:
            chat.invoke("hi")
    assert "try later" in str(caught.value)
    assert caught.value.partial == "Hello"  # type: ignore[attr-defined]
