"""Mapping: text, map_text, accumulate."""

from __future__ import annotations

import pytest
from reactivex.testing import TestScheduler

from rxllm.errors import InvalidInputError
from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import Snapshot, accumulate, map_text, text
from rxllm.schema import AIMessage, AIMessageChunk, GenerationChunk, ToolCallChunk

from .helpers import on_completed, on_error, on_next, run, subscribe


def test_text_marble() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, GenerationChunk(text="he")),
        on_next(20, AIMessageChunk(content="llo")),
        on_next(30, "!"),
        on_completed(40),
    )
    results = scheduler.start(lambda: xs.pipe(text()))
    assert results.messages == [
        on_next(210, "he"), on_next(220, "llo"), on_next(230, "!"), on_completed(240),
    ]  # fmt: skip
    assert xs.subscriptions == [subscribe(200, 240)]


def test_text_fails_the_stream_on_an_item_without_text() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, 42), on_next(30, "b"))
    results = scheduler.start(lambda: xs.pipe(text()))
    assert results.messages[0] == on_next(210, "a")
    assert isinstance(results.messages[1].value.exception, InvalidInputError)
    assert xs.subscriptions == [subscribe(200, 220)]


def test_map_text_marble_keeps_kind_and_metadata() -> None:
    scheduler = TestScheduler()
    tool = ToolCallChunk(name="f", args="{}", index=0)
    xs = scheduler.create_cold_observable(
        on_next(10, GenerationChunk(text="he", generation_info={"i": 1})),
        on_next(20, AIMessageChunk(content="llo", id="m", tool_call_chunks=[tool])),
        on_error(30, ValueError("x")),
    )
    results = scheduler.start(lambda: xs.pipe(map_text(str.upper)))
    first, second = (m.value.value for m in results.messages[:2])
    assert first == GenerationChunk(text="HE", generation_info={"i": 1})
    assert second == AIMessageChunk(content="LLO", id="m", tool_call_chunks=[tool])
    assert results.messages[2].time == 230


def test_accumulate_marble_emits_snapshots() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, "he"), on_next(20, "llo"), on_next(30, "!"), on_completed(40)
    )
    results = scheduler.start(lambda: xs.pipe(accumulate()))
    assert results.messages == [
        on_next(210, "he"), on_next(220, "hello"), on_next(230, "hello!"), on_completed(240),
    ]  # fmt: skip
    assert all(type(m.value.value) is Snapshot for m in results.messages[:3])


def test_accumulate_messages_into_the_message_so_far() -> None:
    tool = [ToolCallChunk(name="f", args='{"a":', index=0)]
    rest = [ToolCallChunk(args=" 1}", index=0)]
    out = run(
        accumulate(),
        [
            AIMessageChunk(content="Hi", id="m", tool_call_chunks=tool),
            AIMessageChunk(content="!", id="m", tool_call_chunks=rest),
        ],
    )
    assert [type(m) for m in out] == [AIMessage, AIMessage]
    assert [m.content for m in out] == ["Hi", "Hi!"]
    # Half the arguments: parsed as far as they go, as a stream cut short there would be.
    assert [(call.name, call.args) for call in out[0].tool_calls] == [("f", {})]
    assert out[1].tool_calls[0].args == {"a": 1}


@pytest.mark.parametrize("chunking", ["token", "char"])
def test_pipelines_stream_and_invoke(chunking: str) -> None:
    llm = FakeStreamingListLLM(responses=["Hello there"], chunking=chunking)  # type: ignore[arg-type]
    assert "".join(llm.pipe(text()).stream("hi")) == "Hello there"
    assert llm.pipe(map_text(str.upper)).invoke("hi") == "HELLO THERE"
    snapshots = list(llm.pipe(accumulate()).stream("hi"))
    assert snapshots[-1] == "Hello there"
    assert all(b.startswith(a) for a, b in zip(snapshots, snapshots[1:], strict=False))
    # A snapshot is the whole text so far: invoke returns the last, not their join.
    assert llm.pipe(accumulate()).invoke("hi") == "Hello there"


async def test_pipelines_astream_and_ainvoke() -> None:
    chat = FakeListChatModel(responses=["Hello there"])
    pieces = [c async for c in chat.pipe(map_text(str.upper)).astream("hi")]
    assert "".join(c.content for c in pieces) == "HELLO THERE"
    assert [p async for p in chat.pipe(text()).astream("hi")] == ["Hello", " there"]
    final = await chat.pipe(accumulate()).ainvoke("hi")
    assert isinstance(final, AIMessage)
    assert final.content == "Hello there"
