"""Buffering: several chunks merged into one, by count, by time, or by whichever is first.

Unlike RxPY's ``buffer_with_*``, which emit lists, these merge each buffer into one
item of the kind they receive (strings join, chunks add up), so the stream stays a
stream of text: ``stream`` prints it and ``invoke`` sums it as before. They never emit
an empty buffer: time-based ones start their clock at the first item of a buffer, so
an idle stream schedules nothing at all. Use ``ops.buffer_with_count`` for lists.
"""

from __future__ import annotations

from typing import Any

from reactivex import abc

from ._check import check_count, check_scheduler, check_seconds
from ._operator import Operator, named
from ._skeleton import NextAndFlush, Pacer, flushing
from ._text import merge

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
    return _buffering(None, count, None)


def _buffering(
    seconds: float | None, count: int | None, scheduler: abc.SchedulerBase | None
) -> Operator:
    """Buffers closed by ``count`` items, by ``seconds`` after their first item, or both."""
    limit = count or 0  # 0: no count

    def start(observer: abc.ObserverBase[Any], pacer: Pacer) -> NextAndFlush:
        buffer: list[Any] = []
        append, lock = buffer.append, pacer.lock

        def flush() -> None:
            if buffer:
                merged = merge(buffer)
                buffer.clear()
                observer.on_next(merged)

        def on_count(item: Any) -> None:
            append(item)
            if len(buffer) >= limit:
                flush()

        if seconds is None:
            return on_count, flush

        def on_time(_: abc.SchedulerBase, __: Any = None) -> None:
            with lock:
                if not pacer.stopped:
                    flush()

        def on_next(item: Any) -> None:
            with lock:
                append(item)
                if limit and len(buffer) >= limit:
                    pacer.timer.disposable = None
                    flush()
                elif len(buffer) == 1:
                    pacer.after(seconds, on_time)

        return on_next, flush

    return flushing(start, scheduler)


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
    return _buffering(seconds, None, scheduler)


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
    return _buffering(seconds, count, scheduler)
