"""Cold Observables made from provider calls: the one place a call is started and stopped.

Every way a provider can produce output (an async iterator, a sync iterator, a coroutine,
a blocking function) is reduced to an async iterator, and a ``Source`` pumps
that iterator into an observer from a task. Subscribing starts the task; disposing
cancels it, which closes the iterator (and with it the HTTP response). Nothing runs
before subscription: the iterator is created inside the task.

Where the task runs: on the loop of an ``AsyncIOScheduler`` given at subscribe time (a
bridge's: the caller's running loop, or the one a sync consumer steps), else on the
library's own loop thread. Blocking iterators and functions run on the worker pool, one
step at a time, so disposal stops them within one step.

The Observable is a ``Source``: it keeps the ways it was made from, so that a bridge
whose consumer is the call's only observer iterates the call itself (see ``Source``).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .._internals import scheduler_loop
from ..errors import attach_partial
from ._flow import FlowScope, current_scope
from ._loop import library_loop, on_loop_thread, worker_pool

__all__ = ["Source", "direct_of", "from_callables", "iterate_in_thread"]

T = TypeVar("T")

#: The pump gives the loop a turn after the first item, then after every this many. A
#: fast server packs hundreds of tokens into one network read; without the turns they
#: would all be decoded before a consumer on the same loop saw the first, and would pile
#: up in its buffer for long enough to be promoted by the cyclic garbage collector, whose
#: full collections then cost more per chunk than the turns of the loop do.
ITEMS_PER_TURN = 64


class Source(Observable[T]):
    """A cold Observable of one provider call, which a bridge may also iterate as the call.

    Subscribing pumps ``amake()`` into the observer from a task. But when a bridge's
    consumer is the only one who would see the items (no operator between, no run
    listener: see ``direct_of``), the task, the observers and the bridge's inbox carry
    each item from one iterator to another and add nothing, so the bridge iterates the
    call's own iterator instead: ``amake()``'s on the consuming task, or ``make()``'s on
    the consuming thread with no event loop at all. ``astream`` of a fake chat model then
    costs 0.2 µs a chunk over the call's own iterator, where subscribing cost 1.1 (min of
    alternating runs); a blocking consumer also saves the loop's per-request cost (async
    httpx alone takes ~1.5x sync httpx's CPU per request).
    Either way one call is made, it stops when the consumer stops, and an error carries
    the text so far on ``.partial``.

    Args:
        amake: creates the call's async iterator; called on subscription, in the task.
        make: creates a blocking iterator of the same items, for a consumer that blocks
            anyway; ``None``: sync consumers subscribe.
        text_of: the text of an item, kept so that an error can carry ``.partial``;
            ``None`` for a call whose iterator keeps its own (an HTTP provider's
            transport does) or has no text: then, with nothing to present, a bridge
            hands that iterator to its consumer as it is.
    """

    def __init__(
        self,
        amake: Callable[[], AsyncIterator[T]],
        make: Callable[[], Iterator[T]] | None = None,
        text_of: Callable[[T], str] | None = None,
    ) -> None:
        super().__init__(self._pump)
        self.amake = amake
        self.make = make
        self.text_of = text_of

    def _pump(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # Without an asyncio scheduler, not the caller's running loop even if there is
        # one: a blocking wait for the result (``Observable.run()`` in a notebook cell)
        # would deadlock it.
        loop = scheduler_loop(scheduler) or library_loop()
        return _Pump(self.amake, observer, current_scope(), self.text_of, loop).start()

    def direct(self) -> Source[T]:
        return self


def direct_of(observable: Observable[T]) -> Source[T] | None:
    """The ``Source`` a bridge may iterate instead of subscribing ``observable``.

    An Observable offers one by a ``direct()`` method, asked when the consumer starts:
    a ``Source`` is its own; a run of a runnable is its source's while nobody listens to
    the run, and the events of a lone run are a ``Source`` of their own (``rxllm._runs``).
    Anything else (an operator's Observable) has none and is subscribed.
    """
    direct = getattr(observable, "direct", None)
    return None if direct is None else cast("Source[T] | None", direct())


class _Pump:
    """Drives one async iterator into one observer, from one task."""

    __slots__ = ("make", "observer", "scope", "text_of", "disposed", "task", "loop")

    def __init__(
        self,
        make: Callable[[], AsyncIterator[Any]],
        observer: abc.ObserverBase[Any],
        scope: FlowScope | None,
        text_of: Callable[[Any], str] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.make = make
        self.observer = observer
        self.scope = scope
        self.text_of = text_of
        self.loop = loop
        self.disposed = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> abc.DisposableBase:
        if on_loop_thread(self.loop):
            self._spawn()
        else:
            self.loop.call_soon_threadsafe(self._spawn)
        return Disposable(self._dispose)

    def _spawn(self) -> None:
        if self.disposed:
            return
        self.task = self.loop.create_task(self._run())
        if self.scope is not None:
            self.scope.track(self.task)

    def _dispose(self) -> None:
        # The flag stops emission at once, from any thread; cancelling the task (on
        # its own loop) interrupts a pending await and closes the iterator.
        self.disposed = True
        loop = self.loop
        if on_loop_thread(loop):
            # Disposed from inside the pump itself (a downstream ``take`` completing in
            # ``on_next``): the flag is enough, and cancelling here would instead
            # interrupt the iterator's own cleanup at its first await.
            if asyncio.current_task() is not self.task:
                self._cancel()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        observer, scope, text_of = self.observer, self.scope, self.text_of
        texts: list[str] = []
        error: Exception | None = None
        iterator: AsyncIterator[Any] | None = None
        try:
            # Made inside the try: a provider that checks its input eagerly reports the
            # failure as the stream's error.
            iterator = self.make()
            count = 0
            async for item in iterator:
                if text_of is not None:
                    texts.append(text_of(item))
                observer.on_next(item)
                if self.disposed:  # by the observer, or from another thread
                    return
                count += 1
                if count == 1 and scope is not None and scope.consumer_waiting:
                    await scope.hand_over()  # to a sync consumer, now rather than in 5 ms
                elif count % ITEMS_PER_TURN == 1:  # the first item, the 65th, the 129th...
                    await asyncio.sleep(0)
                if scope is not None and scope.full():
                    await scope.room()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            if scope is not None and self.task is not None:
                # Cleanup is done: a bridge closing now has nothing left to wait for.
                scope.tasks.discard(self.task)
        # Terminal notifications go out after the iterator is closed, so a consumer
        # that sees the end of a stream knows its provider call is finished.
        if self.disposed:
            return
        if error is None:
            observer.on_completed()
        else:
            if texts:
                attach_partial(error, "".join(texts))
            observer.on_error(error)


async def iterate_in_thread(make: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
    """Iterate a blocking iterator on the worker pool, one item per step.

    When the consumer stops early, the iterator is closed on the pool right after the
    step in flight, so a generating model stops within one token. Who closes it is
    decided under a lock, not by which step was last submitted: an exception can land
    between a submission and the line that would note it (Ctrl-C under a custom
    handler), and a generator closed while another thread runs it fails.
    """
    pool = worker_pool()
    done = object()
    iterator: Iterator[T] | None = None
    lock = threading.Lock()
    stepping = False  # a worker is advancing the iterator
    left = threading.Event()  # the consumer has gone: the iterator is to be closed
    # The worker runs in this task's context, so the code it runs finds its run
    # (``dispatch_custom_event``) as async code would.
    context = contextvars.copy_context()

    def close() -> None:
        close_iterator = getattr(iterator, "close", None)
        if close_iterator is not None:
            close_iterator()

    def step() -> Any:
        nonlocal iterator, stepping
        with lock:
            if left.is_set():
                return done
            stepping = True
        try:
            if iterator is None:
                iterator = make()
            return next(iterator, done)
        finally:
            with lock:
                stepping = False
                close_here = left.is_set()
            if close_here:
                close()

    try:
        while True:
            item = await asyncio.wrap_future(pool.submit(context.run, step))
            if item is done:
                return
            yield item
    finally:
        with lock:
            left.set()
            busy = stepping
        if not busy:
            # A step submitted but not begun sees ``left`` and returns; it may already
            # be inside ``context.run``, which cannot be entered twice: hence a copy.
            context.copy().run(close)


async def _once(make: Callable[[], Awaitable[T]]) -> AsyncGenerator[T, None]:
    yield await make()


def _once_sync(make: Callable[[], T]) -> Iterator[T]:
    yield make()


def _in_thread(func: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    def run() -> Awaitable[T]:
        context = contextvars.copy_context()
        return asyncio.wrap_future(worker_pool().submit(context.run, func))

    return run


def from_callables(
    *,
    astream: Callable[[], AsyncIterator[T]] | None = None,
    stream: Callable[[], Iterator[T]] | None = None,
    acall: Callable[[], Awaitable[T]] | None = None,
    call: Callable[[], T] | None = None,
    text_of: Callable[[T], str] | None = None,
) -> Source[T]:
    """A cold Observable from whichever ways of producing output are available.

    Token streaming wins over a single result, and async over blocking. With only
    ``acall`` or ``call`` the Observable emits exactly one item, the final output:
    the default streaming implementation. A sync consumer iterating the call directly
    (``Source``) uses ``stream``, or ``call`` when nothing streams: never a single
    result where the async way would stream.
    """
    make: Callable[[], AsyncIterator[T]]
    if astream is not None:
        make = astream
    elif stream is not None:
        make = lambda: iterate_in_thread(stream)  # noqa: E731
    elif acall is not None:
        make = lambda: _once(acall)  # noqa: E731
    elif call is not None:
        make = lambda: _once(_in_thread(call))  # noqa: E731
    else:
        raise TypeError("from_callables needs at least one way to produce output")
    blocking: Callable[[], Iterator[T]] | None = stream
    if blocking is None and call is not None and astream is None:
        blocking = lambda: _once_sync(call)  # noqa: E731
    return Source(make, blocking, text_of)
