"""Shared fixtures: leak checks and waiting for things that happen on other threads."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import settings

from rxllm._runtime._loop import library_loop
from tests.servers.scripted import ScriptedServer

T = TypeVar("T")

# The suite is deterministic: hypothesis draws the same examples on every run and never
# fails an example for being slow on a shared machine. To search wider on your own
# machine, run with HYPOTHESIS_PROFILE=explore, and pin what it finds as a plain test.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=1000, database=None, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached within the deadline")
        time.sleep(0.005)


async def await_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """``wait_until`` for async tests: yields to the loop while polling."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached within the deadline")
        await asyncio.sleep(0.005)


def library_tasks() -> int:
    """Tasks alive on rxllm's own loop, not counting the one that counts them."""

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1

    return asyncio.run_coroutine_threadsafe(count(), library_loop()).result()


class Resources:
    """Threads and library-loop tasks, to compare before and after a workload."""

    def __init__(self) -> None:
        self.threads = {t.ident for t in threading.enumerate()}
        self.tasks = library_tasks()

    def new_threads(self) -> set[str]:
        return {t.name for t in threading.enumerate() if t.ident not in self.threads}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A scripted HTTP server on 127.0.0.1 (``tests.servers.scripted``), for one test."""
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def resources() -> Resources:
    library_loop()  # started before counting, so it is not counted as a leak
    return Resources()


def on_worker_thread(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` on a new thread and return its result (or raise its error).

    A sync consumer on the main thread steps its own loop; anywhere else it is fed by
    rxllm's loop thread. Tests of the sync bridges run both ways.
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            results.append(func(*args))
        except BaseException as exc:  # re-raised on the test's thread
            errors.append(exc)

    thread = threading.Thread(target=body, name="test-consumer")
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the consumer thread did not finish"
    if errors:
        raise errors[0]
    return results[0]


SyncRunner = Callable[..., Any]


@pytest.fixture(params=["main thread", "worker thread"])
def sync_thread(request: pytest.FixtureRequest) -> SyncRunner:
    """Runs a sync consumer on the main thread (its own stepped loop) or on a worker
    thread (fed by rxllm's loop thread): ``sync_thread(func, *args)``."""
    if request.param == "main thread":
        return lambda func, *args: func(*args)
    return on_worker_thread


@pytest.fixture(scope="session")
def llama_base_url() -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server on the embedded model, one per session
    (started on first use; tests/llms and tests/langchain share it)."""
    from tests.servers.llama import llama_server

    with llama_server() as base_url:
        yield base_url
