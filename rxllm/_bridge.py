"""Bridges out of an Observable: into a sync iterator or an async iterator.

reactivex has no async-iterator bridge in either direction, so rxllm owns both.

- ``iterate`` (sync), on the main thread outside a running loop, subscribes on that
  thread's ``SteppedLoop`` and runs it whenever the consumer asks for an item and none is
  buffered, until one is: the consumer, the source and the operators share one thread,
  and a slow consumer holds the provider back as a blocking read would. Elsewhere it
  subscribes on the library's loop thread and hands items over through a
  ``queue.SimpleQueue``, never touching the caller's event loop, so it works inside a
  running one (a Jupyter cell) and from any thread.
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
from datetime import UTC, datetime
from queue import SimpleQueue
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

from ._flow import FlowScope, context_with, enter_scope, exit_scope
from ._loop import SteppedLoop, library_loop, on_loop_thread, own_loop

__all__ = ["aiterate", "aiterate_batches", "iterate"]

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


class _Inbox:
    """Items on their way from a subscription to a generator, on one event loop."""

    __slots__ = ("items", "waiter", "stepping", "loop", "thread", "scope")

    def __init__(self, loop: asyncio.AbstractEventLoop, scope: FlowScope) -> None:
        self.items: deque[Any] = deque()
        #: Set while an async generator waits for an item.
        self.waiter: asyncio.Future[None] | None = None
        #: Set while a sync generator runs its stepped loop for an item.
        self.stepping = False
        self.loop = loop
        self.thread = threading.get_ident()
        self.scope = scope

    def wait(self) -> asyncio.Future[None]:
        self.waiter = waiter = self.loop.create_future()
        return waiter

    def step(self) -> None:
        assert isinstance(self.loop, SteppedLoop)
        self.stepping = True
        try:
            self.loop.step()
        finally:
            self.stepping = False

    def _wake(self) -> None:
        if self.stepping:
            # Stopped now rather than by a callback one turn later, so the source does
            # not go on producing (a turn can decode a whole network read) first.
            self.stepping = False
            self.loop.stop()
            return
        waiter = self.waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            self.waiter = None  # one wake-up per wait

    def push(self, item: Any) -> None:
        self.items.append(item)
        if threading.get_ident() != self.thread:  # a source emitting from its own thread
            self.loop.call_soon_threadsafe(self._wake)
        elif self.waiter is not None or self.stepping:  # else the consumer looks here next
            self._wake()

    def on_next(self, item: Any) -> None:
        self.push(item)
        self.scope.produced += 1

    def subscribe(self, observable: Observable[Any], scheduler: abc.SchedulerBase) -> Any:
        token = enter_scope(self.scope)
        try:
            return observable.subscribe(
                self.on_next,
                lambda error: self.push(_End(error)),
                lambda: self.push(_COMPLETED),
                scheduler=scheduler,
            )
        finally:
            exit_scope(token)


class _SteppedScheduler(AsyncIOThreadSafeScheduler):
    """A stepped loop's scheduler, telling the time by the loop's clock (see ``SteppedLoop``).

    Operators measure deadlines and gaps with ``now`` and wait with the loop's timers; on
    a loop whose clock stops, the two must be the same clock.
    """

    def __init__(self, loop: SteppedLoop) -> None:
        super().__init__(loop)
        self._offset = datetime.now(UTC).timestamp() - loop.time()

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self._offset + self._loop.time(), UTC)


def iterate(observable: Observable[Any], present: Callable[[Any], T] | None = None) -> Iterator[T]:
    """Iterate an Observable from synchronous code.

    On the main thread outside a running loop the source runs on that thread, while the
    consumer waits for items; anywhere else, on rxllm's loop thread (see the module).

    Args:
        observable: what to iterate.
        present: applied to each item before it is yielded.

    Raises:
        RuntimeError: when called on rxllm's own loop thread (from a callback of a
            subscription), where blocking would deadlock; use ``aiterate`` there. Also
            when a stream begun on the main thread is iterated on another, or from
            inside a callback of another stream of the main thread.
    """
    own = own_loop()  # where the first item is asked for, not where the stream was made
    if own is not None:
        yield from _step_through(observable, present, own)
    else:
        yield from _iterate_on_library_loop(observable, present)


def _step_through(
    observable: Observable[Any], present: Callable[[Any], T] | None, loop: SteppedLoop
) -> Iterator[T]:
    """``iterate`` on the caller's own thread, running ``loop`` while it waits."""
    with loop.deferring_interrupts():
        scope = FlowScope()
        inbox = _Inbox(loop, scope)
        subscription = inbox.subscribe(observable, _SteppedScheduler(loop))
        items, popleft, took_one = inbox.items, inbox.items.popleft, scope.took_one
        ended = False
        try:
            while True:
                while not items:
                    inbox.step()
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
                if loop.steppable():
                    loop.step_until(_close([subscription], scope))
                else:
                    # A finalizer that fired inside a step, or on another thread: the
                    # cancellation is queued and runs at the loop's next step.
                    subscription.dispose()


def _iterate_on_library_loop(
    observable: Observable[Any], present: Callable[[Any], T] | None
) -> Iterator[T]:
    """``iterate`` from any thread: the source runs on the library's loop thread."""
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
    scope = FlowScope()
    inbox = _Inbox(asyncio.get_running_loop(), scope)
    subscription = inbox.subscribe(observable, AsyncIOThreadSafeScheduler(inbox.loop))
    items, popleft, took_one = inbox.items, inbox.items.popleft, scope.took_one
    ended = False
    try:
        while True:
            while not items:
                await inbox.wait()
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


async def aiterate_batches(observable: Observable[Any]) -> AsyncGenerator[list[Any], None]:
    """Iterate an Observable from async code a batch at a time: each batch holds every
    item that arrived since the consumer last looked (at least one).

    For consumers whose cost is per batch rather than per item: a server writes a batch
    to its socket in one write, where ``aiterate`` would make one write an item while a
    fast upstream has a whole network read's chunks ready. The same bridge as
    ``aiterate``: the same bounded buffer, and leaving the loop disposes the subscription.
    """
    scope = FlowScope()
    inbox = _Inbox(asyncio.get_running_loop(), scope)
    subscription = inbox.subscribe(observable, AsyncIOThreadSafeScheduler(inbox.loop))
    items, popleft, took_one = inbox.items, inbox.items.popleft, scope.took_one
    ended = False
    try:
        while True:
            while not items:
                await inbox.wait()
            batch: list[Any] = []
            end: _End | None = None
            while items:
                item = popleft()
                if type(item) is _End:
                    end = item
                    break
                took_one()
                batch.append(item)
            if batch:
                yield batch
            if end is not None:
                ended = True
                if end.error is not None:
                    raise end.error
                return
    finally:
        if not ended or scope.tasks:
            await _close([subscription], scope)
