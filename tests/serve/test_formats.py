"""What every format of ``to_sse`` shares, and ``openai-chat`` under hypothesis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from rxllm import AIMessageChunk
from rxllm.llms import FakeListChatModel
from rxllm.serve import FORMATS, to_sse

from .conftest import Expected, collect, counts, encode, events_of, objects, replies

CHUNK_FORMATS = sorted(set(FORMATS) - {"events"})


def test_every_format_is_registered() -> None:
    assert set(FORMATS) == {
        "openai-chat",
        "openai-completions",
        "openai-responses",
        "anthropic",
        "vercel-ui",
        "events",
    }


@given(replies())
def test_openai_chat_any_stream_is_what_the_sdk_assembles(reply: Expected) -> None:
    data = [event.data for event in events_of(encode(reply.chunks, "openai-chat"))]
    assert data[-1] == "[DONE]"
    state = ChatCompletionStreamState()
    for item in data[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate_json(item))
    completion = state.current_completion_snapshot
    (choice,) = completion.choices
    assert (choice.message.content or "") == reply.text
    assert (choice.message.model_extra or {}).get("reasoning_content", "") == reply.reasoning
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == reply.calls
    assert choice.finish_reason == ("tool_calls" if reply.calls else "stop")
    usage = completion.usage
    assert counts(reply.usage) == (
        None
        if usage is None
        else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
    )


def _text(format: str, data: dict[str, Any]) -> str:
    """The text one event of ``format`` adds to the reply."""
    if format == "openai-chat":
        return "".join(c["delta"].get("content") or "" for c in data.get("choices", []))
    if format == "openai-completions":
        return "".join(c["text"] for c in data.get("choices", []))
    if format == "openai-responses":
        return data["delta"] if data["type"] == "response.output_text.delta" else ""
    if format == "anthropic":
        delta = data.get("delta", {})
        return delta.get("text", "") if delta.get("type") == "text_delta" else ""
    return data["delta"] if data["type"] == "text-delta" else ""


@pytest.mark.parametrize("format", CHUNK_FORMATS)
async def test_a_model_observable_is_served_in_every_format(format: str) -> None:
    model = FakeListChatModel(responses=["Hello there, world"])
    body = await collect(to_sse(model.observe("hi"), format=format, model="fake"))
    assert "".join(_text(format, data) for data in objects(body)) == "Hello there, world"


@pytest.mark.parametrize("format", sorted(FORMATS))
async def test_closing_the_bytes_cancels_the_source_in_every_format(format: str) -> None:
    closed: list[bool] = []

    async def endless() -> AsyncIterator[object]:
        try:
            while True:
                yield (
                    {"event": "on_custom_event"}
                    if format == "events"
                    else AIMessageChunk(content="x")
                )
        finally:
            closed.append(True)

    stream = to_sse(endless(), format=format)
    await anext(stream)
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed == [True]
