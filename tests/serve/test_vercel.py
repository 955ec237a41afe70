"""``vercel-ui``: read back by the AI SDK's own client (``DefaultChatTransport`` and
``readUIMessageStream``, run with node), which validates every part by its schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from rxllm import AIMessageChunk, GenerationChunk, RateLimitError
from rxllm.schema import ToolCallChunk, Usage
from rxllm.serve import to_sse
from rxllm.serve._errors import ClientError
from rxllm.serve._stream import encoder_for
from rxllm.serve._vercel import VercelUIEncoder
from tests.servers.scripted import Reply, ScriptedServer

from .conftest import AISDK, Expected, collect, encode, events_of, replies


def joined(message: dict[str, Any], kind: str) -> str:
    return "".join(part["text"] for part in message["parts"] if part["type"] == kind)


def tools(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [part for part in message["parts"] if part["type"].startswith("tool-")]


def finish(result: dict[str, Any]) -> dict[str, Any]:
    chunks: list[dict[str, Any]] = result["chunks"]
    (last,) = [chunk for chunk in chunks if chunk["type"] == "finish"]
    return last


def test_the_header_marks_the_protocol() -> None:
    assert encoder_for("vercel-ui").headers == {"x-vercel-ai-ui-message-stream": "v1"}


# One node process reads a batch of 20 streams; shrinking a batch is slow and shows little.
@settings(max_examples=6, phases=[Phase.explicit, Phase.generate])
@given(st.lists(replies(), min_size=20, max_size=20))
def test_any_stream_is_what_the_ai_sdk_assembles(ai_sdk: AISDK, drawn: list[Expected]) -> None:
    bodies = [encode(reply.chunks, "vercel-ui") for reply in drawn]
    for reply, body, result in zip(drawn, bodies, ai_sdk.read_many(bodies), strict=True):
        assert events_of(body)[-1].data == "[DONE]"
        assert result["errors"] == []
        message = result["message"]
        assert message["role"] == "assistant"
        assert joined(message, "text") == reply.text
        assert joined(message, "reasoning") == reply.reasoning
        assert [(p["type"], p["toolCallId"], p["state"], p["input"]) for p in tools(message)] == [
            (f"tool-{name}", id, "input-available", json.loads(args))
            for id, name, args in reply.calls
        ]
        assert finish(result)["finishReason"] == ("tool-calls" if reply.calls else "stop")
        if reply.usage is None:
            assert "metadata" not in message
        else:
            assert message["metadata"]["usage"] == {
                "inputTokens": reply.usage.input_tokens,
                "outputTokens": reply.usage.output_tokens,
                "totalTokens": reply.usage.total_tokens,
            }


async def test_to_sse_writes_the_parts_in_order(ai_sdk: AISDK) -> None:
    async def chunks() -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(reasoning="Think")
        yield AIMessageChunk(content="Hé")
        yield AIMessageChunk(content="llo")
        call = ToolCallChunk(name="get", id="c1", index=0, args='{"a"')
        yield AIMessageChunk(tool_call_chunks=[call])
        yield AIMessageChunk(tool_call_chunks=[ToolCallChunk(index=0, args=": 1}")])

    body = await collect(to_sse(chunks(), format="vercel-ui"))
    result = ai_sdk.read(body)
    assert [chunk["type"] for chunk in result["chunks"]] == [
        "start",
        "start-step",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-available",
        "finish-step",
        "finish",
    ]
    assert result["message"]["id"] == result["chunks"][0]["messageId"]
    assert [part["type"] for part in result["message"]["parts"]] == [
        "step-start",
        "reasoning",
        "text",
        "tool-get",
    ]


def test_finish_reasons_refusals_and_bad_arguments(ai_sdk: AISDK) -> None:
    call = ToolCallChunk(name="get", id="c1", index=0, args="{not json")
    streams = [
        [AIMessageChunk(content="cut", response_metadata={"finish_reason": "length"})],
        [AIMessageChunk(response_metadata={"refusal": "No.", "stop_reason": "refusal"})],
        [AIMessageChunk(response_metadata={"finish_reason": "weird"})],
        [AIMessageChunk(tool_call_chunks=[call])],
    ]
    length, refusal, other, bad = ai_sdk.read_many(
        [encode(chunks, "vercel-ui") for chunks in streams]
    )
    assert finish(length)["finishReason"] == "length"
    assert (joined(refusal["message"], "text"), finish(refusal)["finishReason"]) == (
        "No.",
        "content-filter",
    )
    assert finish(other)["finishReason"] == "other"
    (part,) = tools(bad["message"])
    assert (part["state"], part["rawInput"]) == ("output-error", "{not json")
    assert "not JSON" in part["errorText"]
    assert bad["errors"] == []


@pytest.mark.parametrize("items", [[], [""], [GenerationChunk(text="")]])
def test_an_empty_stream_is_an_empty_message(ai_sdk: AISDK, items: list[Any]) -> None:
    result = ai_sdk.read(encode(items, "vercel-ui"))
    assert result["errors"] == []
    message = result["message"]
    assert message["id"] == result["chunks"][0]["messageId"]
    assert [part for part in message["parts"] if part["type"] != "step-start"] == []
    assert finish(result)["finishReason"] == "stop"


def test_strings_and_text_chunks_are_text(ai_sdk: AISDK) -> None:
    items = ["one ", GenerationChunk(text="two", reasoning="r"), "three"]
    message = ai_sdk.read(encode(items, "vercel-ui"))["message"]
    assert (joined(message, "text"), joined(message, "reasoning")) == ("one twothree", "r")


async def test_an_error_after_the_first_byte_is_an_error_part(ai_sdk: AISDK) -> None:
    async def fails() -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(content="The capital", usage_metadata=Usage(input_tokens=1))
        raise RateLimitError("slow down", status_code=429)

    body = await collect(to_sse(fails(), format="vercel-ui"))
    data = [event.data for event in events_of(body)]
    assert data[-2:] == ['{"type":"error","errorText":"slow down"}', "[DONE]"]
    result = ai_sdk.read(body)
    assert result["errors"] == ["slow down"]
    assert joined(result["message"], "text") == "The capital"
    assert not [chunk for chunk in result["chunks"] if chunk["type"] == "finish"]
    # The encoder alone, for a kind of error the client is told only the message of.
    failed = encode(["x"], "vercel-ui", error=ClientError(500, "api_error", "boom"))
    assert ai_sdk.read(failed)["errors"] == ["boom"]


def test_the_client_posts_to_a_chat_route_and_reads_the_reply(ai_sdk: AISDK) -> None:
    body = encode([AIMessageChunk(content="Hi!")], "vercel-ui")
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hello"}]}
    with ScriptedServer() as server:
        server.script(Reply(body=[body], headers=dict(VercelUIEncoder.headers)))
        result = ai_sdk.chat(f"{server.url}/api/chat", {"messages": [user], "model": "m"})
        (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    sent = request.json()
    assert (sent["messages"], sent["model"], sent["trigger"]) == ([user], "m", "submit-message")
    assert (result["status"], result["errors"]) == (200, [])
    assert result["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    assert joined(result["message"], "text") == "Hi!"
