"""Retrying: a failed call made again, but never after its text has been shown.

``retryable`` and ``backoff`` are also the rules the HTTP models hand their transport.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable

from ..errors import (
    APIConnectionError,
    APIError,
    InternalServerError,
    RateLimitError,
    RxLLMError,
    StreamInterruptedError,
)
from ._check import check_count, check_scheduler, check_seconds
from ._operator import Operator, named
from ._timing import pick_scheduler

__all__ = ["RETRY_INITIAL_DELAY", "RETRY_MAX_DELAY", "backoff", "retry", "retryable"]

#: The first retry waits about this long (seconds); each further one twice as long.
RETRY_INITIAL_DELAY = 0.5
#: No backoff wait is longer than this.
RETRY_MAX_DELAY = 8.0


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Exponential, with up to 25% jitter so that many clients refused at once do not
    come back at once.
    """
    delay: float = min(RETRY_INITIAL_DELAY * 2**attempt, RETRY_MAX_DELAY)
    return delay * (1 - 0.25 * random.random())


def retryable(error: BaseException) -> bool:
    """Whether a call that failed with ``error`` may succeed if made again.

    Yes for rate limits, server errors (5xx, or an in-band error of that type), 408 and
    409, timeouts, connections refused or lost. No for the rest of rxllm's tree (a bad
    request or key, bad input, malformed data): the same call would fail the same way.
    An exception from outside the tree is not known to be permanent: yes.
    """
    if not isinstance(error, RxLLMError):
        return True
    if isinstance(error, RateLimitError | InternalServerError | StreamInterruptedError):
        return True
    if isinstance(error, APIError):
        return error.status_code in (408, 409)
    return isinstance(error, APIConnectionError)


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
    HTTP models' own retries decide (``retryable``): a rate limit, a
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
