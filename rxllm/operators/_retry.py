"""Retrying: a failed call made again, but never after its text has been shown."""

from __future__ import annotations

import threading
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from .._retrying import retryable
from ._check import check_count, check_scheduler, check_seconds
from ._operator import Operator, named
from ._timing import pick_scheduler

__all__ = ["retry"]


@named
def retry(
    attempts: int = 3,
    *,
    delay: float = 0.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Operator:
    """Subscribe again (make the call again) when the stream fails before its first item.

    ``ops.retry`` subscribes again whenever the stream fails, so a consumer that already
    received half a reply receives its beginning a second time. Here a failure after
    the first item is final: it reaches the consumer with its ``.partial`` text, and
    only failures before any output (a refused connection, a 5xx, a first-token
    timeout placed upstream) are retried. So are only failures that may pass, as the
    HTTP models' own retries decide (``rxllm._retrying.retryable``): a rate limit, a
    server error, a timeout, a lost connection, or an exception from outside rxllm's
    tree; a bad request or key, bad input or malformed data fails at once, since the
    same call would fail the same way.

    Args:
        attempts: subscriptions in all, the first included (at least 1).
        delay: seconds to wait before each new attempt.
        scheduler: where the delay is timed; by default the one given at subscription.

    .. code-block:: text

        retry(2):  -#                    first attempt fails before any item
                   --a-b-|               the second attempt's items

    Examples:
        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> tries = []
        >>> def flaky(_):
        ...     tries.append(1)
        ...     return reactivex.throw(OSError("refused")) if len(tries) < 2 else reactivex.of("ok")
        >>> reactivex.defer(flaky).pipe(retry(3), ops.to_list()).run()
        ['ok']
    """
    attempts = check_count("retry", "attempts", attempts)
    delay = check_seconds("retry", "delay", delay, zero=True)
    check_scheduler("retry", scheduler)

    def operator(source: Observable[Any]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            current = SerialDisposable()
            lock = threading.Lock()
            tried = 0
            started = False  # an item went out: the attempt in flight is the last

            def attempt(_: abc.SchedulerBase | None = None, __: Any = None) -> None:
                nonlocal tried
                tried += 1
                # In place before subscribing: a source failing at once starts the next
                # attempt from inside ``subscribe``, which must not be replaced after.
                this = SingleAssignmentDisposable()
                current.disposable = this
                this.disposable = source.subscribe(
                    on_next, on_error, observer.on_completed, scheduler=scheduler_
                )

            def on_next(item: Any) -> None:
                nonlocal started
                started = True
                observer.on_next(item)

            def on_error(error: Exception) -> None:
                with lock:
                    again = (
                        not started
                        and tried < attempts
                        and not current.is_disposed
                        and retryable(error)
                    )
                if not again:
                    observer.on_error(error)
                elif delay:
                    clock = pick_scheduler(scheduler, scheduler_)
                    current.disposable = clock.schedule_relative(delay, attempt)
                else:
                    attempt()

            attempt()
            return current

        return Observable(subscribe)

    return operator
