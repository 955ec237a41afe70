"""The bridges out of Observables: running loops, leaks, slow consumers, schedulers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import AsyncIterator

import pytest
import reactivex
from reactivex import operators as ops

from rxllm import RunnableLambda
from rxllm._constants import BUFFER_HIGH_WATER, MAX_WORKER_THREADS
from rxllm._runtime._bridge import Consumer, aiterate, aiterate_batches, iterate
from rxllm._runtime._flow import current_scope
from rxllm._runtime._loop import library_loop
from rxllm._runtime._pump import Source
from rxllm.llms import FakeListLLM, FakeStreamingListLLM

from .conftest import Resources, SyncRunner, library_tasks

WORKERS = {f"rxllm-worker_{i}" for i in range(MAX_WORKER_THREADS)}


async def test_stream_works_inside_a_running_event_loop() -> None:
    """A Jupyter cell runs inside an event loop; sync ``stream`` must still work there."""
    asyncio.get_running_loop()
    llm = FakeStreamingListLLM(responses=["works in a notebook"])
    assert list(llm.stream("hi")) == ["works", " in", " a", " notebook"]
    assert llm.invoke("hi") == "works in a notebook"
    assert llm.batch(["a", "b"]) == ["works in a notebook"] * 2


def test_thousand_sequential_streams_leave_nothing_behind(resources: Resources) -> None:
    llm = FakeStreamingListLLM(responses=["a few words here"])
    chat_free = FakeListLLM(responses=["one"])
    for index in range(1000):
        stream = llm.stream("hi")
        if index % 2:
            assert "".join(stream) == "a few words here"
        else:
            next(stream)
            stream.close()  # type: ignore[attr-defined]
        chat_free.invoke("hi")
    gc.collect()
    assert llm.calls.in_flight == 0
    assert llm.calls.completed + llm.calls.cancelled == llm.calls.started == 1000
    assert library_tasks() == resources.tasks
    # Blocking calls may start pool workers (a task can arrive before the last worker is
    # marked idle), but never more than the pool's bound, and nothing else.
    assert resources.new_threads() <= WORKERS


async def test_two_hundred_concurrent_astreams_leave_nothing_behind(
    resources: Resources,
) -> None:
    llm = FakeStreamingListLLM(responses=["a few words here"], delay=0.001)
    before = len(asyncio.all_tasks())

    async def one(index: int) -> str:
        if index % 3 == 0:
            async for _ in llm.astream("hi"):
                break
            return ""
        return "".join([chunk async for chunk in llm.astream("hi")])

    results = await asyncio.gather(*(one(i) for i in range(200)))
    assert results.count("a few words here") == 133
    await asyncio.sleep(0)  # let the finalizers of the abandoned generators run
    gc.collect()
    await asyncio.sleep(0.05)
    assert llm.calls.in_flight == 0
    assert len(asyncio.all_tasks()) == before
    assert resources.new_threads() == set()


def test_two_hundred_concurrent_streams_from_threads(resources: Resources) -> None:
    llm = FakeStreamingListLLM(responses=["a b c"], delay=0.001)
    outputs: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        text = "".join(llm.stream("hi"))
        with lock:
            outputs.append(text)

    threads = [threading.Thread(target=consume) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outputs == ["a b c"] * 200
    assert llm.calls.max_in_flight > 1
    assert library_tasks() == resources.tasks


def test_slow_sync_consumer_keeps_the_buffer_bounded(sync_thread: SyncRunner) -> None:
    total = 20 * BUFFER_HIGH_WATER
    llm = FakeStreamingListLLM(responses=["x" * total], chunking="char")
    produced = 0

    def count(_: object) -> None:
        nonlocal produced
        produced += 1

    def consume() -> tuple[int, int]:
        stream = llm.pipe(ops.do_action(count)).stream("hi")
        next(stream)
        time.sleep(0.3)  # ample time for an unpaced source to produce everything
        while_busy = produced
        return while_busy, 1 + sum(1 for _ in stream)

    while_busy, received = sync_thread(consume)
    assert while_busy <= BUFFER_HIGH_WATER + 1
    assert received == produced == total  # nothing dropped once it resumes


def test_a_consumer_stepping_its_own_loop_reads_nothing_while_busy() -> None:
    # On the main thread the source runs only while the consumer waits, as a blocking
    # read would: what it made for the first item is all it makes until asked again.
    llm = FakeStreamingListLLM(responses=["x" * 5000], chunking="char")
    produced = 0

    def count(_: object) -> None:
        nonlocal produced
        produced += 1

    stream = llm.pipe(ops.do_action(count)).stream("hi")
    next(stream)
    made_for_the_first = produced
    time.sleep(0.1)
    assert produced == made_for_the_first < 100  # one turn of the source's loop at most
    assert 1 + sum(1 for _ in stream) == produced == 5000


async def test_slow_async_consumer_keeps_the_buffer_bounded() -> None:
    total = 20 * BUFFER_HIGH_WATER
    llm = FakeStreamingListLLM(responses=["x" * total], chunking="char")
    produced = 0

    def count(_: object) -> None:
        nonlocal produced
        produced += 1

    received = 0
    async for _ in llm.pipe(ops.do_action(count)).astream("hi"):
        received += 1
        if received == 1:
            await asyncio.sleep(0.3)
            assert produced <= BUFFER_HIGH_WATER + 1
    assert received == produced == total


def test_order_is_kept_under_flow_control() -> None:
    text = "".join(chr(0x4E00 + i % 500) for i in range(5 * BUFFER_HIGH_WATER))
    llm = FakeStreamingListLLM(responses=[text], chunking="char")
    assert "".join(llm.stream("hi")) == text


def test_blocking_call_on_the_library_loop_is_refused() -> None:
    llm = FakeStreamingListLLM(responses=["a"])
    errors: list[BaseException] = []
    done = threading.Event()

    def on_next(_: object) -> None:  # runs on rxllm's loop thread
        try:
            llm.invoke("nested")
        except RuntimeError as error:
            errors.append(error)
        done.set()

    llm.observe("outer").subscribe(on_next)
    assert done.wait(5)
    assert "would deadlock" in str(errors[0])


def test_time_operators_run_on_the_loop_not_on_timer_threads(sync_thread: SyncRunner) -> None:
    llm = FakeStreamingListLLM(responses=["a b c d"], delay=0.01)
    seen: set[str] = set()

    def record(_: object) -> None:
        seen.add(threading.current_thread().name)

    def consume() -> tuple[str, str]:
        piped = llm.pipe(ops.delay(0.01), ops.do_action(record), ops.buffer_with_time(0.02))
        text = "".join("".join(b.text for b in batch) for batch in piped.stream("hi"))
        return text, threading.current_thread().name

    text, consumer = sync_thread(consume)
    assert text == "a b c d"
    # The consumer's own thread when it steps its loop (the main thread), else rxllm's.
    assert seen == ({"MainThread"} if consumer == "MainThread" else {"rxllm-loop"})


async def test_async_time_operators_run_on_the_running_loop() -> None:
    llm = FakeStreamingListLLM(responses=["a b"], delay=0.01)
    seen: set[int] = set()
    piped = llm.pipe(ops.delay(0.01), ops.do_action(lambda _: seen.add(threading.get_ident())))
    assert [c async for c in piped.astream("hi")] == ["a", " b"]
    assert seen == {threading.get_ident()}


def test_iterate_a_plain_observable() -> None:
    assert list(iterate(reactivex.of(1, 2, 3))) == [1, 2, 3]


def _failing_to_subscribe(observer: object, scheduler: object = None) -> None:
    raise LookupError("cannot subscribe")


def test_iterate_an_observable_failing_on_subscribe(sync_thread: SyncRunner) -> None:
    source: reactivex.Observable[int] = reactivex.create(_failing_to_subscribe)  # type: ignore[arg-type]
    with pytest.raises(LookupError, match="cannot subscribe"):
        sync_thread(lambda: list(iterate(source)))


async def test_aiterate_an_observable_failing_on_subscribe() -> None:
    source: reactivex.Observable[int] = reactivex.create(_failing_to_subscribe)  # type: ignore[arg-type]
    with pytest.raises(LookupError, match="cannot subscribe"):
        [item async for item in aiterate(source, int)]


@pytest.mark.parametrize("where", ["running loop", "library loop"])
async def test_closing_a_consumer_waits_for_its_sources_cleanup(where: str) -> None:
    """``Consumer``, the bridges' one subscription (notebook's display uses it too)."""
    events: list[str] = []
    first = threading.Event()

    async def forever() -> AsyncIterator[int]:
        try:
            while True:
                yield 1
                await asyncio.sleep(0.01)
        finally:
            await asyncio.sleep(0.01)  # cleanup that takes a turn of its loop
            events.append("cleaned up")

    consumer = Consumer(None if where == "running loop" else library_loop())
    observer: reactivex.Observer[int] = reactivex.Observer(lambda _: first.set())
    consumer.subscribe(Source(forever), observer)
    await asyncio.to_thread(first.wait, 5)
    assert consumer.scope.tasks  # the source runs under the consumer's scope
    if where == "running loop":
        await consumer.close()
    else:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(consumer.close(), consumer.loop))
    assert events == ["cleaned up"]


async def test_aiterate_an_observable_emitting_from_another_thread() -> None:
    source = reactivex.interval(0.001, scheduler=None).pipe(ops.take(5))
    assert [item async for item in aiterate(source)] == [0, 1, 2, 3, 4]


def test_sync_function_steps_run_on_the_worker_pool_unless_a_sync_consumer_calls_them() -> None:
    names: list[str] = []

    def step(text: str) -> str:
        names.append(threading.current_thread().name)
        return text.upper()

    # From async code, and as a step of a pipeline, off the loop: the function may block.
    assert asyncio.run(RunnableLambda(step).ainvoke("x")) == "X"
    assert (RunnableLambda(str.strip) | RunnableLambda(step)).invoke(" y ") == "Y"
    # Called alone by a blocking consumer, on its own thread: nothing else waits for it.
    assert RunnableLambda(step).invoke("z") == "Z"
    assert names[0].startswith("rxllm-worker")
    assert names[1].startswith("rxllm-worker")
    assert names[2] == threading.current_thread().name


def test_a_sync_consumer_gets_the_first_item_before_the_source_goes_on(
    sync_thread: SyncRunner,
) -> None:
    # Else the loop thread would keep the GIL, producing on, for up to the switch
    # interval (5 ms) while the first item waited for the consumer's thread.
    taken_when_asked_for_the_second: list[int] = []

    async def burst() -> AsyncIterator[int]:
        scope = current_scope()
        assert scope is not None
        for i in range(500):
            if i == 1:
                taken_when_asked_for_the_second.append(scope.consumed)
            yield i

    assert sync_thread(lambda: list(iterate(Source(burst)))) == list(range(500))
    assert taken_when_asked_for_the_second == [1]


async def test_batches_hold_what_was_ready_in_order_and_stay_bounded() -> None:
    total = 10 * BUFFER_HIGH_WATER
    llm = FakeStreamingListLLM(responses=["x" * total], chunking="char")
    produced = 0

    def count(_: object) -> None:
        nonlocal produced
        produced += 1

    sizes = []
    async for batch in aiterate_batches(llm.observe("hi").pipe(ops.do_action(count))):
        sizes.append(len(batch))
        assert all(chunk.text == "x" for chunk in batch)
        if len(sizes) == 1:
            await asyncio.sleep(0.2)  # the source fills the buffer meanwhile, and stops
            assert produced <= len(batch) + BUFFER_HIGH_WATER + 1
    assert sum(sizes) == produced == total
    assert max(sizes) > 1  # a fast source's items come several at a time


async def test_batches_end_with_the_error_after_the_items_before_it() -> None:
    source = reactivex.concat(reactivex.of(1, 2, 3), reactivex.throw(ValueError("boom")))
    seen: list[int] = []

    async def consume() -> None:
        async for batch in aiterate_batches(source):
            seen.extend(batch)

    with pytest.raises(ValueError, match="boom"):
        await consume()
    assert seen == [1, 2, 3]


async def test_leaving_a_batch_loop_disposes_the_subscription() -> None:
    disposed = asyncio.Event()
    source = reactivex.interval(0.001).pipe(ops.finally_action(disposed.set))
    async with contextlib.aclosing(aiterate_batches(source)) as batches:
        async for batch in batches:
            assert batch
            break
    assert disposed.is_set()
