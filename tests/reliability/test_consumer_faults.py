"""Faults on the consumer's side, against the scripted server over real sockets.

However a consumer stops (break, ``take``, dispose, task cancellation, a
``wait_for`` timeout, Ctrl-C), the server sees the client leave, the consumer got
exactly what it asked for, and nothing is left open. A slow consumer holds back the
server instead of buffering the stream; one model serves threads and tasks at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from typing import Any

import pytest
from reactivex import operators as ops

from rxllm._constants import BUFFER_HIGH_WATER
from rxllm.llms import ChatOpenAI
from rxllm.testing import LeakTracker, assert_no_leaks
from tests.conftest import SyncRunner, await_until, on_worker_thread, wait_until
from tests.servers.scripted import Pause, Recorded, Reply, ScriptedServer
from tests.servers.wire import openai_chat

from .harness import run, text_of

WORDS = [f"w{i} " for i in range(100)]


def slow_reply(texts: list[str] = WORDS, every: float = 0.01) -> Reply:
    """A stream whose chunks come ``every`` seconds apart: a call still running."""
    body: list[bytes | Pause] = []
    for event in openai_chat(texts):
        body += [event, Pause(every)]
    return Reply(body=body)


def model_for(server: ScriptedServer, **settings: Any) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{server.url}/v1", **settings)


def left(server: ScriptedServer, model: ChatOpenAI, leaks: LeakTracker) -> None:
    """The server saw the client walk away, and once closed nothing is left open."""
    wait_until(lambda: server.aborted == 1)
    assert len(server.requests) == 1
    model.close()
    wait_until(lambda: server.open_connections == 0)
    leaks.check()


def stop_sync(model: ChatOpenAI, way: str) -> list[str]:
    if way == "break":
        got = []
        for chunk in model.stream("hi"):
            got.append(chunk.content)
            if len(got) == 3:
                break
        return got
    if way == "take":
        return [c.content for c in model.pipe(ops.take(3)).stream("hi")]
    if way == "observe + dispose":
        return run(model, "hi", "observe", limit=3).pieces
    if way == "exception in the loop body":
        got = []
        with contextlib.suppress(ZeroDivisionError):
            for chunk in model.stream("hi"):
                got.append(chunk.content)
                if len(got) == 3:
                    raise ZeroDivisionError
        return got
    raise AssertionError(way)


@pytest.mark.parametrize(
    "way", ["break", "take", "observe + dispose", "exception in the loop body"]
)
def test_stopping_a_sync_stream_early(
    server: ScriptedServer, leaks: LeakTracker, way: str, sync_thread: SyncRunner
) -> None:
    server.script(slow_reply())
    model = model_for(server)
    assert "".join(sync_thread(stop_sync, model, way)) == "w0 w1 w2 "
    left(server, model, leaks)


async def stop_async(model: ChatOpenAI, way: str) -> list[str]:
    got: list[str] = []
    if way == "break":
        async with contextlib.aclosing(model.astream("hi")) as stream:  # type: ignore[type-var]
            async for chunk in stream:
                got.append(chunk.content)
                if len(got) == 3:
                    break
    elif way == "take":
        got = [c.content async for c in model.pipe(ops.take(3)).astream("hi")]
    elif way == "task cancellation":
        three = asyncio.Event()

        async def consume() -> None:
            async for chunk in model.astream("hi"):
                got.append(chunk.content)
                if len(got) == 3:
                    three.set()

        task = asyncio.create_task(consume())
        await three.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    elif way == "wait_for timeout":
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(model.ainvoke("hi"), timeout=0.5)
        got = ["w0 ", "w1 ", "w2 "]  # ainvoke shows nothing before the end
    elif way == "astream_events break":
        async with contextlib.aclosing(model.astream_events("hi")) as events:  # type: ignore[type-var]
            async for event in events:
                if event["event"].endswith("_stream"):
                    got.append(text_of(event["data"]["chunk"]))
                    if len(got) == 3:
                        break
    else:
        raise AssertionError(way)
    return got


@pytest.mark.parametrize(
    "way", ["break", "take", "task cancellation", "wait_for timeout", "astream_events break"]
)
async def test_stopping_an_async_stream_early(server: ScriptedServer, way: str) -> None:
    server.script(slow_reply())
    # Started in the test body: the test's own event loop (and its descriptors) exists.
    async with assert_no_leaks():
        model = model_for(server)
        async with model:
            got = await stop_async(model, way)
            assert "".join(got) == "w0 w1 w2 "
            await await_until(lambda: server.aborted == 1)
        assert len(server.requests) == 1
        await await_until(lambda: server.open_connections == 0)


def test_keyboard_interrupt_during_sync_iteration(
    server: ScriptedServer, leaks: LeakTracker
) -> None:
    server.script(slow_reply(every=0.05))
    model = model_for(server)
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    got: list[str] = []
    # Armed at the first chunk, however long that takes on a loaded machine.
    timer = threading.Timer(0.1, signal.pthread_kill, (main, signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - the interrupt lands mid-loop
        for chunk in model.stream("hi"):
            got.append(chunk.content)
            if len(got) == 1:
                timer.start()
    timer.join()
    assert 0 < len(got) < len(WORDS)
    assert got == WORDS[: len(got)]  # what arrived before the interrupt, in order
    left(server, model, leaks)


@pytest.mark.parametrize("thread", ["main", "worker"])
def test_slow_consumer_holds_the_server_back_and_keeps_order(
    server: ScriptedServer, leaks: LeakTracker, thread: str
) -> None:
    texts = [f"{i:06d}" + "y" * 2000 for i in range(6000)]  # about 12 MiB on the wire
    body = openai_chat(texts)
    server.script(Reply(body=body))
    model = model_for(server)
    produced = 0

    def count(_: object) -> None:
        nonlocal produced
        produced += 1

    def consume() -> tuple[int, int, list[str]]:
        stream = model.pipe(ops.do_action(count)).stream("hi")
        first = next(stream)
        if thread == "worker":  # fed by rxllm's loop thread, which reads ahead
            wait_until(lambda: produced > BUFFER_HIGH_WATER // 2)
        threading.Event().wait(0.5)  # a consumer busy elsewhere
        while_busy, sent = produced, server.body_bytes
        return while_busy, sent, [first.content] + [chunk.content for chunk in stream]

    while_busy, sent, contents = consume() if thread == "main" else on_worker_thread(consume)
    # The bridge holds at most its high-water mark (the main thread's, which reads only
    # while it waits, one network read); the rest waits on the server, which cannot
    # write past what the socket buffers take.
    assert while_busy <= (BUFFER_HIGH_WATER + 1 if thread == "worker" else 100)
    assert sent < sum(map(len, body))
    assert [c for c in contents if c] == texts  # nothing dropped, nothing reordered
    assert produced == len(contents)
    model.close()
    wait_until(lambda: server.open_connections == 0)
    leaks.check()


def echo(request: Recorded) -> Reply:
    """A reply spelling out the request's prompt, in slow pieces, so calls overlap."""
    prompt = request.json()["messages"][-1]["content"]
    body: list[bytes | Pause] = []
    for event in openai_chat([f"{prompt}:{i} " for i in range(5)]):
        body += [event, Pause(0.005)]
    return Reply(body=body)


def expected(prompt: str) -> str:
    return "".join(f"{prompt}:{i} " for i in range(5))


async def test_one_model_from_ten_threads_and_ten_tasks_at_once(server: ScriptedServer) -> None:
    leaks = LeakTracker().start()
    server.respond = echo
    model = model_for(server)
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(11)

    def thread_body(name: str) -> None:
        try:
            start.wait(5)
            for _ in range(3):
                results[name] = "".join(c.content for c in model.stream(name))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    async def task_body(name: str) -> None:
        for _ in range(3):
            results[name] = "".join([c.content async for c in model.astream(name)])

    threads = [threading.Thread(target=thread_body, args=(f"t{i}",)) for i in range(10)]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(start.wait, 5)
    await asyncio.gather(*(task_body(f"a{i}") for i in range(10)))
    await asyncio.to_thread(lambda: [t.join(30) for t in threads])
    assert errors == []
    assert results == {name: expected(name) for name in results}
    assert len(results) == 20
    assert len(server.requests) == 60
    assert server.peak_connections > 2  # the calls did overlap
    await model.aclose()
    await asyncio.to_thread(model.close)
    await await_until(lambda: server.open_connections == 0)
    await leaks.acheck()


def test_batch_of_many_inputs_on_one_model(server: ScriptedServer, leaks: LeakTracker) -> None:
    server.respond = echo
    model = model_for(server)
    prompts = [f"p{i}" for i in range(40)]
    outputs = model.batch(prompts, {"max_concurrency": 8})
    assert [o.content for o in outputs] == [expected(p) for p in prompts]
    assert 1 < server.peak_connections <= 8
    model.close()
    wait_until(lambda: server.open_connections == 0)
    leaks.check()
