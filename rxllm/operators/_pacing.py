"""Pacing: steady output for a UI, or fewer, bigger updates.

Providers deliver text in bursts (a network hiccup, then twenty tokens at once);
``smooth`` spreads it out into a steady rhythm and ``throttle_text`` coalesces it into
at most one update per interval. Both run their timers on the scheduler given at
subscription (the event loop's, under ``stream``/``astream``), and neither loses text:
whatever is pending goes out at once when the stream ends.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from reactivex import abc

from ._check import check_scheduler, check_seconds, refuse
from ._operator import Operator, named
from ._segment import _WORD, Cutter, RegexCutter, _LiteralCutter
from ._skeleton import NextAndFlush, Pacer, flushing
from ._text import GRAPHEME, Rechunker, merge
from ._timing import seconds_between

__all__ = ["smooth", "throttle_text"]


_CUTTERS: dict[str, Callable[[], Cutter]] = {
    "word": lambda: RegexCutter(_WORD),
    "char": lambda: RegexCutter(GRAPHEME),
    "line": lambda: _LiteralCutter("\n"),
}


@named
def smooth(
    delay: float,
    unit: Literal["word", "char", "line"] = "word",
    *,
    max_lag: float | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Operator:
    """Release text at a steady pace: one ``unit`` every ``delay`` seconds.

    The first unit goes out as soon as it is whole. When text arrives faster than the
    pace, ticks release several units at once, in proportion to the backlog, so that no
    unit waits longer than ``max_lag`` seconds once whole; when the stream ends,
    everything left goes out at once.

    Args:
        delay: seconds between releases.
        unit: ``"word"`` (with its trailing space), ``"char"`` (a whole character,
            combining marks and emoji sequences included) or ``"line"``.
        max_lag: the longest time a whole unit waits (at least ``delay``); by default
            ``50 * delay``.
        scheduler: where the timers run; by default the one given at subscription.

    .. code-block:: text

        smooth(2, "word"):  -"a b c d "---------|
                            -"a "-"b "-"c "-"d "|
    """
    delay = check_seconds("smooth", "delay", delay)
    if max_lag is None:
        max_lag = 50 * delay
    elif check_seconds("smooth", "max_lag", max_lag) < delay:
        raise refuse("smooth", "max_lag", f"None or at least delay ({delay} s)", max_lag)
    if not isinstance(unit, str) or unit not in _CUTTERS:
        raise refuse("smooth", "unit", "'word', 'char' or 'line'", unit)
    check_scheduler("smooth", scheduler)
    make_cutter = _CUTTERS[unit]
    slack = timedelta(seconds=max_lag - delay)

    def start(observer: abc.ObserverBase[Any], pacer: Pacer) -> NextAndFlush:
        clock, lock = pacer.clock, pacer.lock
        cutter = make_cutter()
        rechunk = Rechunker()
        # Units waiting, each with the time after which waiting for one more tick would
        # make it later than ``max_lag``.
        queue: deque[tuple[datetime, str]] = deque()
        last: datetime | None = None  # when the last unit went out
        ticking = False

        def release(_: abc.SchedulerBase | None = None, __: Any = None) -> None:
            nonlocal last, ticking
            with lock:
                ticking = False
                if pacer.stopped or not queue:
                    return
                now = clock.now
                # Catch up in proportion to the backlog, and never let a unit wait past
                # its ``max_lag``.
                count = min(max(1, math.ceil(len(queue) * delay / max_lag)), len(queue))
                while count < len(queue) and queue[count][0] < now:
                    count += 1
                text = "".join(queue.popleft()[1] for _ in range(count))
                last = now
                observer.on_next(rechunk.make(text))
                if queue:
                    ticking = True
                    pacer.after(delay, release)

        def on_next(item: Any) -> None:
            nonlocal ticking
            with lock:
                if pacer.stopped:
                    return
                text = item if type(item) is str else rechunk.feed(item)
                units = cutter.push(text)
                if units:
                    due = clock.now + slack
                    queue.extend((due, unit) for unit in units)
                if ticking or not queue:
                    return
                wait = 0.0 if last is None else delay - seconds_between(last, clock.now)
                if wait <= 0:
                    release()
                else:
                    ticking = True
                    pacer.after(wait, release)

        def flush() -> None:
            text = "".join(unit for _, unit in queue) + cutter.flush()
            queue.clear()
            leftover = rechunk.leftover(text)
            if leftover is not None:
                observer.on_next(leftover)

        return on_next, flush

    return flushing(start, scheduler)


@named
def throttle_text(interval: float, *, scheduler: abc.SchedulerBase | None = None) -> Operator:
    """Coalesce text into at most one update per ``interval`` seconds, losing none.

    Each update holds all the text since the last one. The first item goes out at
    once; items arriving within the next ``interval`` are merged and go out together
    when it ends. Unlike ``ops.throttle_first`` or
    ``ops.sample``, nothing is dropped, and the end of the stream flushes at once.

    .. code-block:: text

        throttle_text(3):  -a-b-c-----d-|
                           -a---"bc"--d-|
    """
    interval = check_seconds("throttle_text", "interval", interval)
    check_scheduler("throttle_text", scheduler)

    def start(observer: abc.ObserverBase[Any], pacer: Pacer) -> NextAndFlush:
        lock = pacer.lock
        pending: list[Any] = []
        open_window = False

        def flush() -> None:
            if pending:
                merged = merge(pending)
                pending.clear()
                observer.on_next(merged)

        def window_ends(_: abc.SchedulerBase, __: Any = None) -> None:
            nonlocal open_window
            with lock:
                if pacer.stopped:
                    return
                if pending:
                    flush()
                    pacer.after(interval, window_ends)
                else:
                    open_window = False

        def on_next(item: Any) -> None:
            nonlocal open_window
            with lock:
                if pacer.stopped:
                    return
                if open_window:
                    pending.append(item)
                    return
                open_window = True
                observer.on_next(item)
                pacer.after(interval, window_ends)

        return on_next, flush

    return flushing(start, scheduler)
