"""``rxllm.testing.LeakTracker`` catches what it claims to, and only that."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from rxllm._runtime._loop import library_loop, own_loop
from rxllm.llms import ChatOpenAI
from rxllm.testing import LeakError, LeakTracker, assert_no_leaks
from tests.servers.scripted import Reply, ScriptedServer
from tests.servers.wire import openai_chat


def test_a_thread_left_running_is_a_leak() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="forgotten")
    with pytest.raises(LeakError, match="1 more threads.*forgotten"), assert_no_leaks(settle=0.1):  # noqa: PT012
        thread.start()
    release.set()
    thread.join()


def test_a_socket_left_open_is_a_leak() -> None:
    opened: list[socket.socket] = []
    try:
        with (
            pytest.raises(LeakError, match="1 more fds, 1 more sockets"),
            assert_no_leaks(settle=0.1),
        ):  # noqa: PT012
            opened.append(socket.socket())
    finally:
        opened[0].close()


def test_a_connection_left_in_the_pool_of_an_unclosed_model_is_a_leak(
    server: ScriptedServer,
) -> None:
    server.script(Reply(body=openai_chat(["ok"])))
    model = ChatOpenAI(base_url=f"{server.url}/v1")
    tracker = LeakTracker(settle=0.2).start()
    assert model.invoke("hi").content == "ok"
    with pytest.raises(LeakError, match="2 more sockets"):  # the client's and the server's
        tracker.check()
    model.close()
    tracker.check()  # closing it is the cure


def test_a_task_left_on_the_library_loop_is_a_leak() -> None:
    release = threading.Event()

    async def forever() -> None:
        await asyncio.to_thread(release.wait)

    with pytest.raises(LeakError, match="1 more library_tasks"), assert_no_leaks(settle=0.1):  # noqa: PT012
        future = asyncio.run_coroutine_threadsafe(forever(), library_loop())
    release.set()
    future.result(5)


def test_a_task_left_on_the_stepped_loop_is_a_leak() -> None:
    """The main thread's stepped loop is in the baseline, but what runs on it is not."""
    loop = own_loop()
    assert loop is not None
    with pytest.raises(LeakError, match="1 more library_tasks"), assert_no_leaks(settle=0.1):  # noqa: PT012
        task = loop.create_task(asyncio.sleep(10))
    task.cancel()
    loop.step_until(asyncio.wait([task]))
    assert task.cancelled()


async def test_a_task_left_on_the_running_loop_is_a_leak() -> None:
    task = None
    with pytest.raises(LeakError, match="1 more loop_tasks"):  # noqa: PT012
        async with assert_no_leaks(settle=0.1):
            task = asyncio.create_task(asyncio.sleep(10))
    assert task is not None
    task.cancel()


def test_what_closes_within_the_grace_period_is_not_a_leak() -> None:
    release = threading.Event()
    with assert_no_leaks(settle=2):
        thread = threading.Thread(target=release.wait)
        thread.start()
        threading.Timer(0.1, release.set).start()
    assert not thread.is_alive()


def test_an_error_in_the_body_is_not_masked() -> None:
    release = threading.Event()
    with pytest.raises(ZeroDivisionError), assert_no_leaks(settle=0.1):  # noqa: PT012
        threading.Thread(target=release.wait).start()
        raise ZeroDivisionError
    release.set()


def test_growth_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        LeakTracker().growth()
