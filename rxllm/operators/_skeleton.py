"""The three ways an operator here subscribes, each written once.

An operator differs from the others in what it does with an item; how it subscribes,
ends and cleans up is one of three shapes:

- ``mapping``: each item becomes one item; an exception from the step ends the stream.
- ``tapping``: items pass through while hooks look at the notifications; an exception
  from a hook ends the stream in place of the notification.
- ``flushing``: items are held and emitted later (by count, by timer or at a boundary);
  whatever is held goes out when the stream ends, before its completion or error.

Each takes a function called once per subscription, so state is never shared between
two subscriptions of one operator. A ``flushing`` operator's ``on_next`` goes to the
upstream as it is; ``mapping`` and ``tapping`` put one call around the step or hook,
as the closures they replace did.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeAlias

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from ._operator import Operator
from ._timing import pick_scheduler

__all__ = ["Hooks", "NextAndFlush", "Pacer", "flushing", "mapping", "tapping"]

NextAndFlush: TypeAlias = tuple[Callable[[Any], None], Callable[[], None]]
"""A ``flushing`` subscription's ``on_next``, and its ``flush``."""


def mapping(make_step: Callable[[], Callable[[Any], Any]]) -> Operator:
    """An operator emitting ``step(item)`` for each item, ``step`` being made per subscription.

    ``ops.map`` wraps every call in a try/except and a selector lookup; this is the same
    contract (an exception in ``step`` ends the stream with it) in less time.
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            step, emit, fail = make_step(), observer.on_next, observer.on_error

            def on_next(item: Any) -> None:
                try:
                    result = step(item)
                except Exception as error:
                    fail(error)
                    return
                emit(result)

            return source.subscribe(on_next, fail, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


class Hooks(NamedTuple):
    """What a ``tapping`` operator calls; ``None`` calls nothing."""

    on_next: Callable[[Any], None] | None = None
    on_error: Callable[[Exception], None] | None = None
    on_completed: Callable[[], None] | None = None
    #: Runs after the upstream is disposed, however the subscription ends.
    on_dispose: Callable[[], None] | None = None


def tapping(make_hooks: Callable[[abc.SchedulerBase | None], Hooks]) -> Operator:
    """An operator passing notifications through unchanged, after calling hooks on them.

    ``make_hooks`` is called at each subscription, with the subscriber's scheduler. An
    exception from a hook ends the stream with it, as in ``ops.do_action``; a
    notification without a hook goes straight through.
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            hooks = make_hooks(scheduler)
            emit, fail, look = observer.on_next, observer.on_error, hooks.on_next

            def after(hook: Callable[..., None] | None, forward: Any) -> Any:
                if hook is None:
                    return forward

                def notify(*args: Any) -> None:
                    try:
                        hook(*args)
                    except Exception as raised:
                        fail(raised)
                        return
                    forward(*args)

                return notify

            def on_next(item: Any) -> None:  # ``notify`` for one item, without ``*args``
                try:
                    look(item)  # type: ignore[misc]  # not None: else ``emit`` is subscribed
                except Exception as raised:
                    fail(raised)
                    return
                emit(item)

            upstream = source.subscribe(
                emit if look is None else on_next,
                after(hooks.on_error, fail),
                after(hooks.on_completed, observer.on_completed),
                scheduler=scheduler,
            )
            if hooks.on_dispose is None:
                return upstream
            return CompositeDisposable(upstream, Disposable(hooks.on_dispose))

        return Observable(subscribe)

    return operator


class Pacer:
    """One subscription's clock and timer, the lock they share with the source, and its end.

    Timers may fire on another thread than the source, so an operator holds ``lock``
    wherever it touches its state, and a timer does nothing once ``stopped``.
    """

    __slots__ = ("clock", "lock", "stopped", "timer")

    def __init__(self, clock: abc.SchedulerBase) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.timer = SerialDisposable()
        self.stopped = False

    def after(self, seconds: float, action: abc.ScheduledAction[Any]) -> None:
        """Run ``action`` in ``seconds``, instead of whatever was to run before."""
        self.timer.disposable = self.clock.schedule_relative(seconds, action)


def flushing(
    start: Callable[[abc.ObserverBase[Any], Pacer], NextAndFlush],
    scheduler: abc.SchedulerBase | None = None,
) -> Operator:
    """An operator that holds items back and flushes what it holds when the stream ends.

    At each subscription ``start(observer, pacer)`` returns the subscription's
    ``on_next`` and its ``flush``, which emits whatever is held. When the stream
    completes or fails, under the pacer's lock, the pacer stops (its timer is disposed),
    ``flush`` runs, and then the completion or error is passed on. The pacer's clock is
    ``scheduler``, else the subscriber's; disposing the subscription disposes its timer.
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            pacer = Pacer(pick_scheduler(scheduler, scheduler_))
            on_next, flush = start(observer, pacer)

            def end(error: Exception | None = None) -> None:
                with pacer.lock:
                    pacer.stopped = True
                    pacer.timer.dispose()
                    flush()
                    if error is None:
                        observer.on_completed()
                    else:
                        observer.on_error(error)

            upstream = source.subscribe(on_next, end, end, scheduler=scheduler_)
            return CompositeDisposable(upstream, pacer.timer)

        return Observable(subscribe)

    return operator
