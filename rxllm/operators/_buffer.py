"""Buffering: several chunks merged into one, by count, by time, or by whichever is first.

Unlike RxPY's ``buffer_with_*``, which emit lists, these merge each buffer into one
item of the kind they receive (strings join, chunks add up), so the stream stays a
stream of text: ``stream`` prints it and ``invoke`` sums it as before. They never emit
an empty buffer: time-based ones start their clock at the first item of a buffer, so
an idle stream schedules nothing at all. Use ``ops.buffer_with_count`` for lists.
"""

from __future__ import annotations

import threading
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable

from ._check import check_count, check_scheduler, check_seconds
from ._operator import Operator, named
from ._text import merge
from ._timing import pick_scheduler

__all__ = ["buffer_time", "buffer_time_or_count", "buffer_tokens"]


@named
def buffer_tokens(count: int) -> Operator:
    """Merge every ``count`` items into one; the last may hold fewer.

    .. code-block:: text

        buffer_tokens(2):  -"a"-"b"-"c"-"d"-"e"-|
                           -----"ab"----"cd"----"e"|

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> reactivex.of("a", "b", "c", "d", "e").pipe(buffer_tokens(2), ops.to_list()).run()
        ['ab', 'cd', 'e']
    """
    count = check_count("buffer_tokens", "count", count)

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            buffer: list[Any] = []
            append = buffer.append

            def on_next(item: Any) -> None:
                append(item)
                if len(buffer) >= count:
                    merged = merge(buffer)
                    buffer.clear()
                    observer.on_next(merged)

            def flush() -> None:
                if buffer:
                    merged = merge(buffer)
                    buffer.clear()
                    observer.on_next(merged)

            def on_error(error: Exception) -> None:
                flush()
                observer.on_error(error)

            def on_completed() -> None:
                flush()
                observer.on_completed()

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


def _timed_buffer(
    seconds: float, count: int | None, scheduler: abc.SchedulerBase | None
) -> Operator:
    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, scheduler_)
            lock = threading.RLock()  # timers may fire on another thread than the source
            buffer: list[Any] = []
            timer = SerialDisposable()
            stopped = False

            def flush() -> None:
                timer.disposable = None
                if buffer:
                    merged = merge(buffer)
                    buffer.clear()
                    observer.on_next(merged)

            def on_time(_: abc.SchedulerBase, __: Any = None) -> None:
                with lock:
                    if not stopped:
                        flush()

            def on_next(item: Any) -> None:
                with lock:
                    buffer.append(item)
                    if count is not None and len(buffer) >= count:
                        flush()
                    elif len(buffer) == 1:
                        timer.disposable = clock.schedule_relative(seconds, on_time)

            def on_error(error: Exception) -> None:
                nonlocal stopped
                with lock:
                    stopped = True
                    flush()
                    observer.on_error(error)

            def on_completed() -> None:
                nonlocal stopped
                with lock:
                    stopped = True
                    flush()
                    observer.on_completed()

            upstream = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler_)
            return CompositeDisposable(upstream, timer)

        return Observable(subscribe)

    return operator


@named
def buffer_time(seconds: float, *, scheduler: abc.SchedulerBase | None = None) -> Operator:
    """Merge the items of each ``seconds``-long window into one.

    A window opens with the first item after the previous one closed, so nothing is
    scheduled while the stream is idle and no empty buffer is ever emitted.

    Args:
        seconds: how long a window stays open.
        scheduler: where the timers run; by default the one given at subscription (the
            event loop's, under ``stream``/``astream``).

    .. code-block:: text

        buffer_time(3):  -a-b---c-d-e----|
                         ----"ab"--"cd"-"e"|
    """
    seconds = check_seconds("buffer_time", "seconds", seconds)
    check_scheduler("buffer_time", scheduler)
    return _timed_buffer(seconds, None, scheduler)


@named
def buffer_time_or_count(
    seconds: float, count: int, *, scheduler: abc.SchedulerBase | None = None
) -> Operator:
    """Merge items into one when ``count`` have gathered or ``seconds`` have passed.

    The time window opens with the first item of a buffer, as in ``buffer_time``.

    .. code-block:: text

        buffer_time_or_count(5, 2):  -a-b-c-------|
                                     ---"ab"----"c"|
    """
    seconds = check_seconds("buffer_time_or_count", "seconds", seconds)
    count = check_count("buffer_time_or_count", "count", count)
    check_scheduler("buffer_time_or_count", scheduler)
    return _timed_buffer(seconds, count, scheduler)
