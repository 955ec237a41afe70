"""``events``: a client reading the ``data:`` lines gets back, as JSON, what
``astream_events`` yields."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from reactivex import operators as ops

from rxllm import AIMessageChunk, InvalidInputError, RateLimitError
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.runnable import RunnableLambda
from rxllm.serve import to_sse

from .conftest import collect, events_of


def as_json(value: Any) -> Any:
    """An event as a client expects to read it: models in pydantic's JSON mode."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


def lines(body: bytes) -> list[Any]:
    data = [event.data for event in events_of(body)]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


async def served(events: AsyncIterator[Any]) -> tuple[list[Any], list[Any]]:
    """The events an ``astream_events`` run yields, and what a client read of them."""
    seen: list[Any] = []

    async def source() -> AsyncIterator[Any]:
        async for event in events:
            seen.append(event)
            yield event

    body = await collect(to_sse(source(), format="events"))
    return [as_json(event) for event in seen], lines(body)


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3))
async def test_a_client_reads_what_astream_events_yields(responses: list[str]) -> None:
    model = FakeListChatModel(responses=responses, chunking="char")
    chain = model.pipe(ops.map(lambda chunk: chunk)) | RunnableLambda(lambda m: m.content)
    expected, read = await served(chain.astream_events("hi", version="v2"))
    assert read == expected
    chunks = [e["data"]["chunk"] for e in read if e["event"] == "on_chat_model_stream"]
    text = "".join(AIMessageChunk.model_validate(chunk).content for chunk in chunks)
    assert text == responses[0]


async def test_v1_events_and_text_llms() -> None:
    llm = FakeStreamingListLLM(responses=["one two"])
    expected, read = await served(llm.astream_events("hi", version="v1"))
    assert read == expected
    assert [e["event"] for e in read] == ["on_llm_start"] + ["on_llm_stream"] * 2 + ["on_llm_end"]


async def test_an_observable_of_events_is_served_whole() -> None:
    model = FakeListChatModel(responses=["a b"])
    read = lines(await collect(to_sse(model.observe_events("hi"), format="events")))
    assert [e["event"] for e in read] == [
        "on_chat_model_start",
        "on_chat_model_stream",
        "on_chat_model_stream",
        "on_chat_model_end",
    ]
    output = AIMessageChunk.model_validate(read[-1]["data"]["output"])
    assert output.content == "a b"
    # No ``event:`` lines: the type is the object's own ``event`` key.
    body = await collect(to_sse(model.observe_events("hi"), format="events"))
    assert {event.event for event in events_of(body)} == {"message"}


async def test_anything_json_cannot_hold_is_its_text() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    async def source() -> AsyncIterator[dict[str, Any]]:
        yield {"event": "on_custom_event", "name": "x", "data": {"thing": Opaque()}}

    (event,) = lines(await collect(to_sse(source(), format="events")))
    assert event["data"] == {"thing": "opaque!"}


async def test_an_error_after_the_first_byte_is_an_error_event() -> None:
    model = FakeListChatModel(
        responses=["a b c"], error_after=1, error=RateLimitError("slow down", status_code=429)
    )
    body = await collect(to_sse(model.observe_events("hi"), format="events"))
    data = [event.data for event in events_of(body)]
    assert "[DONE]" not in data
    assert json.loads(data[-1]) == {
        "event": "error",
        "data": {"type": "rate_limit_error", "message": "slow down", "status": 429},
    }
    assert json.loads(data[0])["event"] == "on_chat_model_start"


async def test_items_that_are_not_events_are_refused() -> None:
    model = FakeListChatModel(responses=["x"])
    with pytest.raises(InvalidInputError, match="serves event dicts"):
        await collect(to_sse(model.observe("hi"), format="events"))


async def test_an_empty_stream_is_only_done() -> None:
    async def nothing() -> AsyncIterator[dict[str, Any]]:
        return
        yield

    assert await collect(to_sse(nothing(), format="events")) == b"data: [DONE]\n\n"
