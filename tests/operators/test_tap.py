"""Tapping: tap, on_first_token."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import TestScheduler

from rxllm.llms import FakeListChatModel, FakeStreamingListLLM
from rxllm.operators import on_first_token, tap
from rxllm.schema import AIMessageChunk

from .helpers import on_completed, on_error, on_next, subscribe


def test_tap_marble_sees_everything_and_changes_nothing() -> None:
    scheduler = TestScheduler()
    seen: list[Any] = []
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_completed(30))
    results = scheduler.start(
        lambda: xs.pipe(
            tap(
                lambda x: seen.append(("next", x, scheduler.clock)),
                on_completed=lambda: seen.append(("done", scheduler.clock)),
                on_subscribe=lambda: seen.append(("subscribed", scheduler.clock)),
                on_dispose=lambda: seen.append(("disposed", scheduler.clock)),
            )
        )
    )
    assert results.messages == [on_next(210, "a"), on_next(220, "b"), on_completed(230)]
    assert seen == [
        ("subscribed", 200), ("next", "a", 210), ("next", "b", 220), ("done", 230),
        ("disposed", 230),
    ]  # fmt: skip


def test_tap_on_dispose_runs_when_the_consumer_leaves() -> None:
    scheduler = TestScheduler()
    disposed: list[float] = []
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(100, "b"))
    scheduler.start(
        lambda: xs.pipe(tap(on_dispose=lambda: disposed.append(scheduler.clock))), disposed=250
    )
    assert disposed == [250]
    assert xs.subscriptions == [subscribe(200, 250)]


def test_an_exception_in_tap_ends_the_stream_with_it() -> None:
    scheduler = TestScheduler()
    boom = ValueError("boom")

    def explode(item: str) -> None:
        if item == "b":
            raise boom

    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_next(30, "c"))
    results = scheduler.start(lambda: xs.pipe(tap(explode)))
    assert results.messages == [on_next(210, "a"), on_error(220, boom)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_tap_on_error_sees_the_error() -> None:
    scheduler = TestScheduler()
    errors: list[Exception] = []
    boom = RuntimeError("x")
    xs = scheduler.create_cold_observable(on_error(10, boom))
    results = scheduler.start(lambda: xs.pipe(tap(on_error=errors.append)))
    assert errors == [boom]
    assert results.messages == [on_error(210, boom)]


def test_on_first_token_marble_skips_empty_chunks_and_fires_once() -> None:
    scheduler = TestScheduler()
    first: list[tuple[float, Any]] = []
    role = AIMessageChunk(content="", id="m")
    xs = scheduler.create_cold_observable(
        on_next(5, role), on_next(10, AIMessageChunk(content="he", id="m")),
        on_next(20, AIMessageChunk(content="llo", id="m")), on_completed(30),
    )  # fmt: skip
    results = scheduler.start(
        lambda: xs.pipe(on_first_token(lambda c: first.append((scheduler.clock, c.content))))
    )
    assert first == [(210, "he")]
    assert len(results.messages) == 4


def test_on_first_token_error_ends_the_stream() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"))

    def fail(_: object) -> None:
        raise KeyError("k")

    results = scheduler.start(lambda: xs.pipe(on_first_token(fail)))
    assert isinstance(results.messages[0].value.exception, KeyError)
    assert xs.subscriptions == [subscribe(200, 210)]


def test_tap_and_on_first_token_through_stream() -> None:
    llm = FakeStreamingListLLM(responses=["Hello there"])
    seen: list[str] = []
    first: list[str] = []
    pipeline = llm.pipe(tap(lambda c: seen.append(c.text)), on_first_token(first.append))
    out = list(pipeline.stream("x"))
    assert out == ["Hello", " there"]
    assert seen == out
    assert [c.text for c in first] == ["Hello"]  # type: ignore[attr-defined]


async def test_on_first_token_through_chat_astream() -> None:
    chat = FakeListChatModel(responses=["Hi you"])
    first: list[Any] = []
    out = [c async for c in chat.pipe(on_first_token(first.append)).astream("x")]
    assert [c.content for c in out] == ["Hi", " you"]
    assert first == [out[0]]


@pytest.mark.parametrize("stop_after", [1, 2])
def test_tap_on_dispose_through_stream_when_leaving_early(stop_after: int) -> None:
    llm = FakeStreamingListLLM(responses=["a b c d e f"], delay=0.001)
    disposed: list[bool] = []
    stream = llm.pipe(tap(on_dispose=lambda: disposed.append(True))).stream("x")
    for index, _ in enumerate(stream):
        if index + 1 == stop_after:
            break
    stream.close()  # type: ignore[attr-defined]
    assert disposed == [True]
    assert llm.calls.cancelled == 1


def test_on_first_token_fires_for_reasoning_or_a_tool_call_not_for_a_placeholder() -> None:
    role_only = AIMessageChunk(content="")
    thinking = AIMessageChunk(content="", reasoning="hm")
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, role_only), on_next(20, thinking), on_next(30, AIMessageChunk(content="a")),
        on_completed(40),
    )  # fmt: skip
    seen: list[Any] = []
    scheduler.start(lambda: xs.pipe(on_first_token(seen.append)))
    assert seen == [thinking]
