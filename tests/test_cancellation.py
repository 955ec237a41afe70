"""Every way of stopping early cancels the provider call, and nothing starts unasked."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading

import pytest
from reactivex import operators as ops

from rxllm.llms import FakeListChatModel, FakeStreamingListLLM

from .conftest import await_until, wait_until

LONG = " ".join(f"word{i}" for i in range(200))


def slow_llm() -> FakeStreamingListLLM:
    return FakeStreamingListLLM(responses=[LONG], delay=0.005)


def test_unsubscribed_observe_starts_nothing() -> None:
    llm = slow_llm()
    observable = llm.observe("hi")
    assert observable is not None
    assert llm.calls.started == 0


def test_each_subscription_is_one_call() -> None:
    llm = FakeStreamingListLLM(responses=["a b"])
    observable = llm.observe("hi")
    observable.pipe(ops.to_list()).run()
    observable.pipe(ops.to_list()).run()
    assert llm.calls.started == 2
    assert llm.calls.completed == 2


def test_break_out_of_stream_cancels_before_the_loop_exits() -> None:
    llm = slow_llm()
    for index, _ in enumerate(llm.stream("hi")):
        if index == 1:
            break
    # Closing the generator waits for the call's cleanup: no polling needed.
    assert llm.calls.cancelled == 1
    assert llm.calls.in_flight == 0


def test_closing_the_stream_generator_cancels() -> None:
    llm = slow_llm()
    stream = llm.stream("hi")
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    assert llm.calls.cancelled == 1


def test_an_exception_in_the_consumer_cancels() -> None:
    llm = slow_llm()

    def consume() -> None:
        for _ in llm.stream("hi"):
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        consume()
    assert llm.calls.cancelled == 1


def test_keyboard_interrupt_while_waiting_for_a_chunk_cancels() -> None:
    llm = FakeStreamingListLLM(responses=[LONG], delay=0.2)
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    timer = threading.Timer(0.05, signal.pthread_kill, (main, signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - the interrupt lands mid-loop
        for index, _ in enumerate(llm.stream("hi")):
            if index == 0:
                timer.start()  # armed at the first chunk: it lands while waiting for the next
    timer.join()
    assert llm.calls.cancelled == 1


def test_dispose_cancels() -> None:
    llm = slow_llm()
    received: list[object] = []
    two = threading.Event()

    def on_next(chunk: object) -> None:
        received.append(chunk)
        if len(received) == 2:
            two.set()

    subscription = llm.observe("hi").subscribe(on_next)
    assert two.wait(5)
    subscription.dispose()
    wait_until(lambda: llm.calls.cancelled == 1)
    count = len(received)
    assert count < 200
    assert llm.calls.completed == 0


def test_downstream_take_cancels_the_source() -> None:
    llm = slow_llm()
    assert list(llm.pipe(ops.take(2)).stream("hi")) == ["word0", " word1"]
    assert llm.calls.cancelled == 1


def test_downstream_take_on_a_fast_source_stops_pulling() -> None:
    llm = FakeStreamingListLLM(responses=[LONG])  # no delay: never awaits between chunks
    assert len(list(llm.pipe(ops.take(2)).stream("hi"))) == 2
    assert llm.calls.cancelled == 1


async def test_break_out_of_astream_with_aclosing_cancels_at_once() -> None:
    llm = slow_llm()
    async with contextlib.aclosing(llm.astream("hi")) as stream:  # type: ignore[type-var]
        async for _ in stream:
            break
    assert llm.calls.cancelled == 1


async def test_break_out_of_astream_cancels_promptly() -> None:
    llm = slow_llm()
    async for _ in llm.astream("hi"):
        break
    # Without aclosing, the async generator is closed by the loop's finalizer hook.
    await await_until(lambda: llm.calls.cancelled == 1)
    assert llm.calls.completed == 0


async def test_cancelling_the_consuming_task_cancels() -> None:
    llm = slow_llm()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.astream("hi"):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert llm.calls.cancelled == 1


async def test_wait_for_timeout_cancels() -> None:
    llm = slow_llm()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(llm.ainvoke("hi"), timeout=0.05)
    assert llm.calls.cancelled == 1


async def test_astream_take_cancels() -> None:
    chat = FakeListChatModel(responses=[LONG], delay=0.005)
    chunks = [chunk async for chunk in chat.pipe(ops.take(3)).astream("hi")]
    assert [chunk.content for chunk in chunks] == ["word0", " word1", " word2"]
    assert chat.calls.cancelled == 1
