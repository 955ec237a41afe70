"""Bridges out of an Observable: into a sync iterator or an async iterator.

reactivex has no async-iterator bridge in either direction, so rxllm owns both.

- ``iterate`` (sync) subscribes on the library's loop thread and hands items over through
  a ``queue.SimpleQueue``. It never touches the caller's event loop, so it works inside
  a running one (a Jupyter cell).
- ``aiterate`` (async) subscribes on the caller's running loop; the source runs as a
  task there and items pass through a deque.

Both are generators: nothing is subscribed until the first item is asked for, and
leaving the loop early (``break``, ``close()``/``aclose()``, an exception, cancellation
of the consuming task, ``KeyboardInterrupt``) disposes the subscription and waits until
the source tasks have finished their cleanup, so the HTTP response is closed by the time
control returns. Both subscribe with an ``AsyncIOThreadSafeScheduler``, so time-based
operators use the loop's timers instead of starting timer threads. Slow consumers are
handled by the policy in ``_flow``: bounded buffer, paused sources, nothing dropped.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from queue import SimpleQueue
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

from ._flow import FlowScope, context_with, enter_scope, exit_scope
from ._loop import library_loop, on_loop_thread

__all__ = ["aiterate", "iterate"]

T = TypeVar("T")


class _End:
    """The terminal notification, queued behind the items."""

    __slots__ = ("error",)

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error


_COMPLETED = _End()


async def _close(subscription: list[abc.DisposableBase], scope: FlowScope) -> None:
    for disposable in subscription:
        disposable.dispose()
    await scope.settle()


def iterate(observable: Observable[Any], present: Callable[[Any], T] | None = None) -> Iterator[T]:
    """Iterate an Observable from synchronous code.

    Args:
        observable: what to iterate.
        present: applied to each item before it is yielded.

    Raises:
        RuntimeError: when called on rxllm's own loop thread (from a callback of a
            subscription), where blocking would deadlock; use ``aiterate`` there.
    """
    loop = library_loop()
    if on_loop_thread(loop):
        raise RuntimeError(
            "a blocking rxllm call (stream/invoke/batch) was made on rxllm's event loop "
            "thread, which would deadlock; use the async twin (astream/ainvoke/abatch)"
        )
    scope = FlowScope()
    queue: SimpleQueue[Any] = SimpleQueue()
    subscription: list[abc.DisposableBase] = []

    def on_next(item: Any) -> None:
        queue.put(item)
        scope.produced += 1

    def subscribe() -> None:
        try:
            subscription.append(
                observable.subscribe(
                    on_next,
                    lambda error: queue.put(_End(error)),
                    lambda: queue.put(_COMPLETED),
                    scheduler=AsyncIOThreadSafeScheduler(loop),
                )
            )
        except Exception as exc:
            queue.put(_End(exc))

    scope.consumer_waiting = True  # for the first item: see ``FlowScope.hand_over``
    loop.call_soon_threadsafe(subscribe, context=context_with(scope))
    get, empty, took_one = queue.get, queue.empty, scope.took_one
    ended = False
    try:
        while True:
            if empty():
                scope.consumer_waiting = True
                item = get()
                scope.consumer_waiting = False
            else:
                item = get()
            if type(item) is _End:
                ended = True
                if item.error is not None:
                    raise item.error
                return
            took_one()
            yield item if present is None else present(item)
    finally:
        # A source that ended on its own has already closed; an early exit, or an
        # operator (``take``) that cut its sources short, leaves work to wait for.
        if not ended or scope.tasks:
            asyncio.run_coroutine_threadsafe(_close(subscription, scope), loop).result()


async def aiterate(
    observable: Observable[Any], present: Callable[[Any], T] | None = None
) -> AsyncGenerator[T, None]:
    """Iterate an Observable from async code, on the running loop.

    Args:
        observable: what to iterate.
        present: applied to each item before it is yielded.
    """
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    scope = FlowScope()
    buffer: deque[Any] = deque()
    waiter: asyncio.Future[None] | None = None

    def wake() -> None:
        nonlocal waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            waiter = None  # one wake-up per wait

    def push(item: Any) -> None:
        buffer.append(item)
        if threading.get_ident() != loop_thread:  # a source emitting from its own thread
            loop.call_soon_threadsafe(wake)
        elif waiter is not None:  # else the consumer is busy and looks at the buffer next
            wake()

    def on_next(item: Any) -> None:
        push(item)
        scope.produced += 1

    token = enter_scope(scope)
    try:
        subscription = observable.subscribe(
            on_next,
            lambda error: push(_End(error)),
            lambda: push(_COMPLETED),
            scheduler=AsyncIOThreadSafeScheduler(loop),
        )
    finally:
        exit_scope(token)
    popleft, took_one = buffer.popleft, scope.took_one
    ended = False
    try:
        while True:
            while not buffer:
                waiter = loop.create_future()
                await waiter
            item = popleft()
            if type(item) is _End:
                ended = True
                if item.error is not None:
                    raise item.error
                return
            took_one()
            yield item if present is None else present(item)
    finally:
        if not ended or scope.tasks:
            await _close([subscription], scope)
