"""When a failed call is worth making again, and how long to wait first.

Shared by the two retries, which work at different places: the transport's
(``rxllm._http._transport``) sends a request again inside one call, before its first
chunk, and also honours a server's ``Retry-After``; the ``retry`` operator subscribes
again to any Observable that failed before its first item. Both make a call again only
for a failure that may pass, and neither ever repeats text already emitted.
"""

from __future__ import annotations

import random

from .errors import (
    APIConnectionError,
    APIError,
    InternalServerError,
    RateLimitError,
    RxLLMError,
    StreamInterruptedError,
)

__all__ = ["RETRY_INITIAL_DELAY", "RETRY_MAX_DELAY", "backoff", "retryable"]

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
