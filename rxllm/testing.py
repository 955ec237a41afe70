"""Tools for testing code that uses rxllm, as ``reactivex.testing`` is for RxPY.

``MarbleLLM`` is a model scripted from a marble string, so a stream's timing is part of
the test and runs in virtual time under ``reactivex.testing.TestScheduler``::

    scheduler = TestScheduler()
    llm = MarbleLLM(marbles="-a-b--c|", values={"a": "Hel", "b": "lo", "c": "!"})
    results = scheduler.start(lambda: llm.observe("hi"))

``CallLog`` is what the fakes in ``rxllm.llms`` record about their calls.

``assert_no_leaks`` (a ``LeakTracker``) fails a test whose code leaves something
behind: file descriptors (sockets: open connections, on either side of a local test
server), threads, or tasks on rxllm's loop or on the caller's running loop::

    with assert_no_leaks():
        for chunk in llm.stream("hi"):
            ...
        llm.close()
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, cast

import reactivex
from pydantic import Field, PrivateAttr
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from ._runtime import library_loop, library_tasks, own_loop, pause, running_loop
from .llms import BaseLLM, CallLog
from .schema import GenerationChunk

__all__ = [
    "CallLog",
    "LeakError",
    "LeakTracker",
    "MarbleLLM",
    "ResourceCounts",
    "assert_no_leaks",
]


class MarbleLLM(BaseLLM):
    """An LLM whose every call emits the chunks of a marble diagram, in scheduler time.

    Args:
        marbles: RxPY marble syntax: ``-`` one ``timespan`` passes, a letter or
            ``(a,b)`` group is a chunk, ``|`` completes, ``#`` fails with ``error``.
        values: the text of each marble; a marble without an entry is its own text.
        timespan: scheduler seconds per ``-``.
        error: what ``#`` raises.
    """

    marbles: str
    values: dict[str, str] = Field(default_factory=dict)
    timespan: float = Field(default=1.0, gt=0)
    error: Exception | None = None

    _calls: CallLog = PrivateAttr(default_factory=CallLog)

    @property
    def calls(self) -> CallLog:
        """Subscriptions so far: started, completed, failed, cancelled (disposed early)."""
        return self._calls

    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        # Never used: ``_observe_prepared`` below replaces the provider hooks.
        raise NotImplementedError

    def _observe_prepared(
        self, prepared: str, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Observable[GenerationChunk]:
        chunks = reactivex.cold(
            self.marbles,
            timespan=self.timespan,
            lookup=cast(dict[str | float, Any], dict(self.values)) or None,
            error=self.error,
        ).pipe(ops.map(lambda text: GenerationChunk(text=str(text))))
        calls = self._calls

        def subscribe(
            observer: abc.ObserverBase[GenerationChunk],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            calls.begin(prepared)
            finished = False

            def finish(outcome: Literal["completed", "failed", "cancelled"]) -> None:
                nonlocal finished
                if not finished:
                    finished = True
                    calls.end(outcome)

            def on_error(error: Exception) -> None:
                finish("failed")
                observer.on_error(error)

            def on_completed() -> None:
                finish("completed")
                observer.on_completed()

            inner = chunks.subscribe(observer.on_next, on_error, on_completed, scheduler=scheduler)

            def dispose() -> None:
                inner.dispose()
                finish("cancelled")

            return Disposable(dispose)

        return Observable(subscribe)


# Leaks


class LeakError(AssertionError):
    """Something a workload opened was still open after it, past the grace period."""


@dataclass(frozen=True, slots=True)
class ResourceCounts:
    """What a process holds at one moment.

    Attributes:
        fds: open file descriptors (``None`` where the OS does not list them).
        sockets: those of them that are sockets: every open connection, both ends.
        threads: the idents of live threads that are not pools' (see ``LeakTracker``).
        library_tasks: tasks alive on rxllm's own event loop.
        loop_tasks: tasks alive on the loop running where the count was taken, except
            the counting task (``None`` outside a running loop).
    """

    fds: int | None
    sockets: int | None
    threads: frozenset[int]
    library_tasks: int
    loop_tasks: int | None


def _fd_dir() -> str | None:
    for path in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(path):
            return path
    return None


def _count_fds() -> tuple[int | None, int | None]:
    where = _fd_dir()
    if where is None:
        return None, None
    fds = sockets = 0
    for name in os.listdir(where):
        try:
            target = os.readlink(os.path.join(where, name))
        except OSError:  # closed meanwhile, or the listing's own descriptor
            continue
        fds += 1
        sockets += target.startswith("socket:")
    return fds, sockets


def _loop_tasks() -> int | None:
    loop = running_loop()
    return None if loop is None else len(asyncio.all_tasks(loop) - {asyncio.current_task(loop)})


class LeakTracker:
    """Counts resources before and after a workload; fails on growth.

    Use it as a context manager, sync or async (``with``/``async with``), or call
    ``start()`` and ``check()``/``acheck()``. On exit, while anything is above its
    baseline, it collects garbage (so that finalizers of dropped models and abandoned
    generators run) and polls for up to ``settle`` seconds: closing is asynchronous (a
    server notices a disconnect a little later), so only what is still open after the
    grace period counts as leaked.
    Nothing is checked when the body raised, so the original error is what you see.

    Threads whose names start with one of ``ignore_threads`` are not counted: they are
    pool threads (rxllm's loop and workers, asyncio's default executor), started once,
    bounded and reused, not per call.

    Args:
        settle: seconds to wait for counts to come back down before failing.
        ignore_threads: name prefixes of pool threads.
    """

    def __init__(
        self,
        *,
        settle: float = 2.0,
        ignore_threads: tuple[str, ...] = ("rxllm-", "asyncio_"),
    ) -> None:
        self.settle = settle
        self.ignore_threads = ignore_threads
        self.before: ResourceCounts | None = None

    def counts(self) -> ResourceCounts:
        """The resources held right now."""
        fds, sockets = _count_fds()
        threads = frozenset(
            t.ident
            for t in threading.enumerate()
            if t.ident is not None and not t.name.startswith(self.ignore_threads)
        )
        return ResourceCounts(fds, sockets, threads, library_tasks(), _loop_tasks())

    def start(self) -> Self:
        """Take the baseline, once rxllm's process-wide loops exist.

        rxllm makes two event loops on first use and keeps them for the life of the
        process: its loop thread, and (on the main thread, outside a running loop) the
        loop that sync streams step. Their descriptors (a selector and a wake-up socket
        pair each) are not a workload's to close, so both are made before the baseline
        is taken; tasks left on either still count.
        """
        library_loop()
        own_loop()
        self.before = self.counts()
        return self

    def growth(self) -> dict[str, int]:
        """What grew since ``start()``: name to how many more (empty: nothing)."""
        if self.before is None:
            raise RuntimeError("LeakTracker.growth() before start()")
        before, now = self.before, self.counts()
        grown: dict[str, int] = {}
        for name in ("fds", "sockets", "library_tasks", "loop_tasks"):
            old, new = getattr(before, name), getattr(now, name)
            if old is not None and new is not None and new > old:
                grown[name] = new - old
        threads = now.threads - before.threads
        if threads:
            grown["threads"] = len(threads)
        return grown

    def _failure(self, grown: dict[str, int]) -> LeakError:
        detail = ", ".join(f"{count} more {name}" for name, count in grown.items())
        if "threads" in grown and self.before is not None:
            old = self.before.threads
            names = sorted(t.name for t in threading.enumerate() if t.ident not in old)
            detail += f" (threads now not there before: {', '.join(names)})"
        return LeakError(f"still open {self.settle} s after the workload: {detail}")

    def check(self) -> None:
        """Fail with ``LeakError`` if anything is still above its baseline.

        For sync code (it sleeps while waiting); async code uses ``acheck``.
        """
        for _ in self._polls():
            pause(0.01)

    async def acheck(self) -> None:
        """``check`` for async code: yields to the running loop while waiting."""
        for _ in self._polls():
            await asyncio.sleep(0.01)

    def _polls(self) -> Iterator[None]:
        """Once per wait while something is above its baseline; ``LeakError`` past ``settle``."""
        deadline = time.monotonic() + self.settle
        polls = 0
        while grown := self.growth():
            if time.monotonic() > deadline:
                raise self._failure(grown)
            # A full collection can take a tenth of a second in a big test process, so
            # it runs only when something is still open: at once, then every 25 polls.
            # It is what runs the finalizers of dropped models and abandoned generators.
            if polls % 25 == 0:
                gc.collect()
            polls += 1
            yield

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.check()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.acheck()


def assert_no_leaks(*, settle: float = 2.0) -> LeakTracker:
    """A ``LeakTracker``: ``with assert_no_leaks(): ...`` or ``async with``.

    Args:
        settle: seconds to wait for counts to come back down before failing.

    Examples:
        >>> from rxllm.llms import FakeStreamingListLLM
        >>> with assert_no_leaks():
        ...     text = "".join(FakeStreamingListLLM(responses=["no leak"]).stream("hi"))
        >>> text
        'no leak'
    """
    return LeakTracker(settle=settle)
