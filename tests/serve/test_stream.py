"""``to_sse``: the source, the encoder and the bytes, without HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from rxllm import AIMessageChunk, InvalidInputError, RateLimitError
from rxllm._http._sse import SSEDecoder
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.schema import ToolCallChunk, Usage
from rxllm.serve import FORMATS, to_sse


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])


def datas(body: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [event.data for event in decoder.feed(body) + decoder.flush()]


def test_unknown_formats_and_sources_are_refused_at_once() -> None:
    with pytest.raises(InvalidInputError, match="unknown format 'openai'"):
        to_sse(FakeListChatModel(responses=["x"]).observe("hi"), format="openai")
    with pytest.raises(InvalidInputError, match="not list"):
        to_sse([AIMessageChunk(content="x")], format="openai-chat")  # type: ignore[arg-type]
    assert {"openai-chat", "openai-completions"} <= set(FORMATS)


async def test_openai_chat_is_what_the_official_sdk_assembles() -> None:
    async def chunks() -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(content="", reasoning="Thinking")
        yield AIMessageChunk(content="Hé")
        yield AIMessageChunk(content="llo\n")
        call = ToolCallChunk(name="get", id="t1", index=3, args='{"a"')
        yield AIMessageChunk(tool_call_chunks=[call])
        yield AIMessageChunk(tool_call_chunks=[ToolCallChunk(index=3, args=": 1}")])
        usage = Usage(input_tokens=3, output_tokens=4, total_tokens=7)
        yield AIMessageChunk(usage_metadata=usage, response_metadata={"stop_reason": "tool_use"})

    data = datas(await collect(to_sse(chunks(), format="openai-chat", model="m")))
    assert data[-1] == "[DONE]"
    state = ChatCompletionStreamState()
    for item in data[:-1]:
        state.handle_chunk(ChatCompletionChunk.model_validate_json(item))
    completion = state.current_completion_snapshot
    assert completion.model == "m"
    message = completion.choices[0].message
    assert message.content == "Héllo\n"
    assert (message.model_extra or {})["reasoning_content"] == "Thinking"
    assert message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [
        ("t1", "get", '{"a": 1}')
    ]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 7


async def test_an_error_before_the_first_item_is_raised_after_it_in_band() -> None:
    async def fails_at(n: int) -> AsyncIterator[AIMessageChunk]:
        for i in range(n):
            yield AIMessageChunk(content=str(i))
        raise RateLimitError("slow down", status_code=429)

    with pytest.raises(RateLimitError):
        await collect(to_sse(fails_at(0), format="openai-chat"))
    data = datas(await collect(to_sse(fails_at(2), format="openai-chat")))
    error: dict[str, Any] = json.loads(data[-1])["error"]
    assert error["type"] == "rate_limit_error"
    assert error["message"] == "slow down"
    assert "[DONE]" not in data


async def test_text_llms_as_completions() -> None:
    llm = FakeStreamingListLLM(responses=["one two"])
    data = datas(await collect(to_sse(llm.observe("x"), format="openai-completions")))
    texts = [c["text"] for item in data[:-1] for c in json.loads(item)["choices"]]
    assert "".join(texts) == "one two"
    assert json.loads(data[-2])["choices"][0]["finish_reason"] == "stop"


async def test_closing_the_bytes_cancels_the_source() -> None:
    closed = []

    async def endless() -> AsyncIterator[AIMessageChunk]:
        try:
            while True:
                yield AIMessageChunk(content="x")
        finally:
            closed.append(True)

    stream = to_sse(endless(), format="openai-chat")
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed == [True]


async def test_a_finish_reason_no_format_knows_becomes_the_default() -> None:
    async def chunks() -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(content="x", response_metadata={"done_reason": "load"})

    data = datas(await collect(to_sse(chunks(), format="openai-chat")))
    assert json.loads(data[-2])["choices"][0]["finish_reason"] == "stop"


async def test_a_completion_never_finishes_with_a_chat_only_reason() -> None:
    async def chunks() -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(content="x", response_metadata={"stop_reason": "tool_use"})

    data = datas(await collect(to_sse(chunks(), format="openai-completions")))
    assert json.loads(data[-2])["choices"][0]["finish_reason"] == "stop"


async def test_a_bug_after_the_first_byte_is_logged_and_not_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def chunks() -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk(content="x")
        raise KeyError("secret detail")

    data = datas(await collect(to_sse(chunks(), format="openai-chat")))
    assert json.loads(data[-1])["error"]["message"] == "internal server error"
    assert "secret detail" not in data[-1]
    (record,) = [r for r in caplog.records if r.name == "rxllm.serve"]
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError
