"""Fan-out: share_stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from reactivex.testing import TestScheduler

from rxllm import RunnableLambda
from rxllm._runtime._bridge import aiterate
from rxllm.llms import FakeStreamingListLLM
from rxllm.operators import share_stream, text
from rxllm.testing import MarbleLLM

from ..conftest import await_until
from .helpers import LONG, on_completed, on_error, on_next, subscribe


def test_share_stream_marble_replays_to_late_subscribers_with_one_call() -> None:
    scheduler = TestScheduler()
    llm = MarbleLLM(marbles="-a-b-c|", timespan=10)
    shared = llm.observe("hi").pipe(text(), share_stream())
    early = scheduler.create_observer()
    late = scheduler.create_observer()
    after = scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: shared.subscribe(early, scheduler=scheduler))
    scheduler.schedule_absolute(235, lambda *_: shared.subscribe(late, scheduler=scheduler))
    scheduler.schedule_absolute(300, lambda *_: shared.subscribe(after, scheduler=scheduler))
    scheduler.start()
    assert early.messages == [
        on_next(210, "a"), on_next(230, "b"), on_next(250, "c"), on_completed(260),
    ]  # fmt: skip
    assert late.messages == [
        on_next(235, "a"), on_next(235, "b"), on_next(250, "c"), on_completed(260),
    ]  # fmt: skip
    assert after.messages == [
        on_next(300, "a"), on_next(300, "b"), on_next(300, "c"), on_completed(300),
    ]  # fmt: skip
    assert (llm.calls.started, llm.calls.completed) == (1, 1)


def test_share_stream_without_replay_is_live_only() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(210, "a"), on_next(230, "b"), on_completed(250))
    shared = xs.pipe(share_stream(replay=False))
    late = scheduler.create_observer()
    scheduler.schedule_absolute(220, lambda *_: shared.subscribe(late, scheduler=scheduler))
    results = scheduler.start(lambda: shared)
    assert results.messages == [on_next(210, "a"), on_next(230, "b"), on_completed(250)]
    assert late.messages == [on_next(230, "b"), on_completed(250)]
    assert xs.subscriptions == [subscribe(200, 250)]


def test_share_stream_cancels_when_the_last_subscriber_leaves_and_restarts() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(50, "b"), on_completed(60))
    shared = xs.pipe(share_stream())
    first = scheduler.create_observer()
    second = scheduler.create_observer()
    subscriptions: list[Any] = []
    for at, observer in ((200, first), (205, second)):
        scheduler.schedule_absolute(
            at, lambda *_, o=observer: subscriptions.append(shared.subscribe(o))
        )
    scheduler.schedule_absolute(220, lambda *_: subscriptions[0].dispose())
    scheduler.schedule_absolute(230, lambda *_: subscriptions[1].dispose())
    again = scheduler.create_observer()
    scheduler.schedule_absolute(300, lambda *_: shared.subscribe(again, scheduler=scheduler))
    scheduler.start()
    assert first.messages == [on_next(210, "a")]
    assert second.messages == [on_next(210, "a")]
    # Still one upstream while anyone listens; cancelled with the last; a fresh call after.
    assert xs.subscriptions == [subscribe(200, 230), subscribe(300, 360)]
    assert again.messages == [on_next(310, "a"), on_next(350, "b"), on_completed(360)]


def test_share_stream_replays_errors() -> None:
    scheduler = TestScheduler()
    boom = RuntimeError("boom")
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_error(20, boom))
    shared = xs.pipe(share_stream())
    late = scheduler.create_observer()
    scheduler.schedule_absolute(400, lambda *_: shared.subscribe(late, scheduler=scheduler))
    results = scheduler.start(lambda: shared)
    assert results.messages == [on_next(210, "a"), on_error(220, boom)]
    assert late.messages == [on_next(400, "a"), on_error(400, boom)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_share_stream_through_stream() -> None:
    llm = FakeStreamingListLLM(responses=["Hello there"])
    assert list(llm.pipe(share_stream()).stream("hi")) == ["Hello", " there"]
    assert llm.pipe(share_stream()).invoke("hi") == "Hello there"


async def test_share_stream_two_astream_consumers_one_call() -> None:
    llm = FakeStreamingListLLM(responses=[LONG], delay=0.001)
    shared = llm.observe("hi").pipe(text(), share_stream())

    async def consume() -> str:
        return "".join([piece async for piece in aiterate(shared)])

    first = asyncio.create_task(consume())
    await asyncio.sleep(0.02)  # the second arrives mid-stream and is replayed the start
    second = asyncio.create_task(consume())
    assert await first == LONG
    assert await second == LONG
    assert llm.calls.started == 1


async def test_a_subscriber_leaving_early_does_not_wait_for_the_shared_call() -> None:
    llm = FakeStreamingListLLM(responses=[LONG], delay=0.05)  # about ten seconds
    shared = llm.observe("hi").pipe(text(), share_stream())
    first = aiterate(shared)
    assert await first.__anext__() == "word0"
    second = aiterate(shared)
    assert await second.__anext__() == "word0"  # replayed
    await first.aclose()
    # Closed while the call goes on for the other subscriber.
    assert (llm.calls.in_flight, llm.calls.completed) == (1, 0)
    await second.aclose()  # the last one out cancels the call
    await await_until(lambda: llm.calls.cancelled == 1)


def test_leaving_a_shared_stream_early_waits_for_the_calls_cleanup() -> None:
    cleaned: list[bool] = []

    async def slow_to_close(_: str) -> AsyncIterator[str]:
        try:
            while True:
                await asyncio.sleep(0.001)
                yield "x"
        finally:
            await asyncio.sleep(0.02)  # closing an HTTP response takes a while
            cleaned.append(True)

    for index, _ in enumerate(RunnableLambda(slow_to_close).pipe(share_stream()).stream("hi")):
        if index == 1:
            break
    # The only subscriber was the last: its bridge waited for the call's cleanup.
    assert cleaned == [True]
