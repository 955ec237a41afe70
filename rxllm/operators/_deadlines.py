"""Deadlines: a stream that takes too long fails with its typed error.

The one implementation of ``first_token_timeout``, ``stall_timeout`` and
``total_timeout``, for the operators and the HTTP models' settings of the same names
(which pipe ``deadlines`` over the whole call, retries included). The error carries the
text let through so far as ``.partial`` (RxPY's ``ops.timeout`` raises a bare
``Exception('Timeout')``); on expiry the upstream is disposed, cancelling the call.

The first token is the first item carrying output: text, reasoning or a tool call (not
an empty placeholder such as a role-only chunk). The stall clock measures the gaps
between items once one has come; a server's keep-alives are no items and reset nothing.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable, SingleAssignmentDisposable

from ..errors import APITimeoutError, FirstTokenTimeoutError, StallTimeoutError, TotalTimeoutError
from ._check import check_scheduler, check_seconds
from ._operator import Operator, named
from ._text import is_token, text_if_any
from ._timing import pick_scheduler, seconds_between

__all__ = ["deadlines", "first_token_timeout", "stall_timeout", "total_timeout"]

_MESSAGES: dict[type[APITimeoutError], str] = {
    FirstTokenTimeoutError: "no first token within {} s of the request",
    StallTimeoutError: "no chunk for {} s in the middle of the stream",
    TotalTimeoutError: "the stream took longer than {} s",
}


def deadlines(
    first: float | None = None,
    stall: float | None = None,
    total: float | None = None,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Operator:
    """The three deadlines in one operator, with one timer; ``None`` turns one off.

    The models' ``first_token_timeout``, ``stall_timeout`` and ``total_timeout``
    settings are this operator; the limits are checked where they are given.
    """

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = pick_scheduler(scheduler, scheduler_)
            lock = threading.RLock()  # timers may fire on another thread than the source
            start = clock.now
            texts: list[str] = []
            timer = SerialDisposable()
            upstream = SingleAssignmentDisposable()
            done = False
            token = False  # the first token has come
            last: datetime | None = None  # when the latest item came

            def next_deadline() -> tuple[float, type[APITimeoutError], float] | None:
                """The earliest deadline still ahead of the stream, its error and limit."""
                due: list[tuple[float, type[APITimeoutError], float]] = []
                if first is not None and not token:
                    due.append((first, FirstTokenTimeoutError, first))
                if stall is not None and last is not None:
                    due.append((seconds_between(start, last) + stall, StallTimeoutError, stall))
                if total is not None:
                    due.append((total, TotalTimeoutError, total))
                return min(due, key=lambda d: d[0]) if due else None

            def arm(now: float) -> None:
                # One timer for the whole stream rather than one per item: when it fires
                # early (the stall clock moved), it waits the rest.
                deadline = next_deadline()
                if deadline is not None:
                    timer.disposable = clock.schedule_relative(deadline[0] - now, expire)

            def expire(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal done
                with lock:
                    if done:
                        return
                    now = seconds_between(start, clock.now)
                    deadline = next_deadline()
                    if deadline is None:
                        return
                    if deadline[0] > now:
                        arm(now)
                        return
                    done = True
                upstream.dispose()
                kind, limit = deadline[1:]
                observer.on_error(kind(_MESSAGES[kind].format(limit), partial="".join(texts)))

            def on_next(item: Any) -> None:
                nonlocal token, last
                with lock:
                    if done:
                        return
                    texts.append(text_if_any(item))
                    if not token:
                        token = is_token(item)
                    if stall is not None:
                        first_item = last is None
                        last = clock.now
                        if first_item:  # the stall clock starts: it may be due first
                            arm(seconds_between(start, last))
                    observer.on_next(item)

            def on_error(error: Exception) -> None:
                nonlocal done
                with lock:
                    if done:
                        return
                    done = True
                    timer.dispose()
                observer.on_error(error)

            def on_completed() -> None:
                nonlocal done
                with lock:
                    if done:
                        return
                    done = True
                    timer.dispose()
                observer.on_completed()

            arm(0.0)
            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=scheduler_
            )
            return CompositeDisposable(upstream, timer)

        return Observable(subscribe)

    return operator


def _one(name: str, seconds: float, scheduler: abc.SchedulerBase | None) -> Operator:
    seconds = check_seconds(name, "seconds", seconds)
    check_scheduler(name, scheduler)
    limits = {"first_token_timeout": "first", "stall_timeout": "stall", "total_timeout": "total"}
    return deadlines(**{limits[name]: seconds}, scheduler=scheduler)


@named
def first_token_timeout(seconds: float, *, scheduler: abc.SchedulerBase | None = None) -> Operator:
    """Fail with ``FirstTokenTimeoutError`` if no token arrives within ``seconds``.

    The clock starts at subscription and stops at the first item carrying output:
    text, reasoning or a tool call (an empty chunk, such as a chat model's opening
    role-only one, does not count). On expiry the upstream is disposed, cancelling the
    call.

    Args:
        seconds: the deadline.
        scheduler: where the timer runs; by default the one given at subscription.

    .. code-block:: text

        first_token_timeout(3):  ------a-b-|
                                 ---#          FirstTokenTimeoutError(partial="")
    """
    return _one("first_token_timeout", seconds, scheduler)


@named
def stall_timeout(seconds: float, *, scheduler: abc.SchedulerBase | None = None) -> Operator:
    """Fail with ``StallTimeoutError`` if, after the first item, none comes in ``seconds``.

    Waiting for the first item is ``first_token_timeout``'s job; this one watches the
    gaps in the middle of the stream.

    .. code-block:: text

        stall_timeout(3):  -a-b-------c-|
                           -a-b---#        StallTimeoutError(partial="ab")
    """
    return _one("stall_timeout", seconds, scheduler)


@named
def total_timeout(seconds: float, *, scheduler: abc.SchedulerBase | None = None) -> Operator:
    """Fail with ``TotalTimeoutError`` if the stream has not ended within ``seconds``.

    The clock starts at subscription.

    .. code-block:: text

        total_timeout(5):  -a-b-c-d-e-|
                           -a-b-#          TotalTimeoutError(partial="ab")
    """
    return _one("total_timeout", seconds, scheduler)
